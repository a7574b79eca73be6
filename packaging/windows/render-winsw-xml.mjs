// Prints the WinSW XML that `ferry service install --platform windows`
// writes for ferry installed in <install-dir> (node.exe beside dist\): the
// sample shipped in the Windows zip. It renders with the CLI's own code
// (dist/platform/service-windows.js), so the two cannot drift.
// Usage: node packaging/windows/render-winsw-xml.mjs 'C:\Program Files\ferry' [agent|receiver]
// FERRY_DIST=<dir> renders with another compiled tree than the repository's dist/.
import { pathToFileURL } from 'node:url';

const dist = process.env.FERRY_DIST ? pathToFileURL(`${process.env.FERRY_DIST}/`) : new URL('../../dist/', import.meta.url);
const { renderWinswXml } = await import(new URL('platform/service-windows.js', dist).href);

const [base = 'C:\\Program Files\\ferry', name = 'agent'] = process.argv.slice(2);
if (name !== 'agent' && name !== 'receiver') {
  process.stderr.write(`render-winsw-xml: name must be agent or receiver, not ${name}\n`);
  process.exit(2);
}
process.stdout.write(
  renderWinswXml({
    name,
    executable: `${base}\\node.exe`,
    // As ferry.cmd starts node (and so `ferry service install` run through it writes): V8's young generation flag first.
    prefixArgs: ['--max-semi-space-size=4', `${base}\\dist\\cli\\bin.js`],
    configPath: 'C:\\ProgramData\\ferry\\agent.yaml',
  }),
);
