// The inventory port over discovery: this machine as the registration body.
// Discovery warnings are logged once per distinct text.

import { discover } from '../discovery/index.js';
import type { Logger } from '../platform/log.js';
import type { InventoryPort } from './ports.js';

export function discoveryInventory(options: { includeLoop: boolean; log: Logger }): InventoryPort {
  const seen = new Set<string>();
  return {
    async discover() {
      const r = await discover({ includeLoop: options.includeLoop });
      for (const w of r.warnings) {
        if (seen.has(w)) continue;
        seen.add(w);
        options.log.warn({ warning: w }, 'discovery warning');
      }
      return r.body;
    },
  };
}
