// The network rewrites configure makes, on files recorded from Debian 12
// (ifupdown, udev persistent-net, netplan) and RHEL 8 (ifcfg,
// NetworkManager) servers: nothing stays bound to the source's MACs or to a
// NIC name the target will not have (it names its first NIC eth0:
// net.ifnames=0), the primary interface falls back to DHCP unless the
// operator keeps static addresses, and a second run changes nothing. A
// second NIC's configuration never takes the primary's eth0.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rewriteIfcfg } from '../../../../src/receiver/configure/network-ifcfg.js';
import { rewriteInterfaces } from '../../../../src/receiver/configure/network-ifupdown.js';
import { rewriteNmProfile } from '../../../../src/receiver/configure/network-manager.js';
import { willBeMissing } from '../../../../src/receiver/configure/network-names.js';
import { rewriteNetplan } from '../../../../src/receiver/configure/network-netplan.js';
import { removeMacRules } from '../../../../src/receiver/configure/network-udev.js';
import { detectDistro } from '../../../../src/receiver/configure/distro.js';
import { rewriteFiles } from '../../../../src/receiver/configure/rewrite-files.js';
import { TargetFiles } from '../../../../src/receiver/configure/target-files.js';
import { DeviceResolver } from '../../../../src/receiver/configure/target-volumes.js';

const fixture = (p: string) => readFileSync(join(__dirname, '../../../fixtures/configure', p), 'utf8');
const dhcp = { keepStaticNetwork: false };
const keep = { keepStaticNetwork: true };

describe('NIC names', () => {
  it('only ethN exists on the target; virtual interfaces are not NICs', () => {
    expect(['ens3', 'enp0s3', 'eno1', 'em1', 'p2p1'].map(willBeMissing)).toEqual([true, true, true, true, true]);
    expect(['eth0', 'eth1', 'lo', 'br0', 'bond0', 'eth0.100', 'wlan0'].map(willBeMissing)).toEqual([false, false, false, false, false, false, false]);
  });
});

describe('ifupdown', () => {
  it('the primary ens3 becomes eth0 on DHCP (static options commented out), ens4 is commented out, lo and br0 stay', () => {
    const before = fixture('debian12/interfaces');
    const { text, changes } = rewriteInterfaces(before, dhcp);
    const live = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(live).toContain('allow-hotplug eth0');
    expect(live).toContain('iface eth0 inet dhcp');
    expect(live.some((l) => /ens3|ens4|address 192|gateway/.test(l))).toBe(false);
    expect(live).toContain('iface lo inet loopback');
    expect(live).toContain('iface br0 inet manual');
    expect(live).toContain('\tbridge_ports none');
    expect(text).toContain('#ferry# \taddress 192.168.10.5/24');
    expect(changes.some((c) => c.includes('renamed eth0'))).toBe(true);
    expect(rewriteInterfaces(text, dhcp)).toEqual({ text, changes: [] });
  });

  it('keepStaticNetwork keeps the primary address (on eth0)', () => {
    const { text } = rewriteInterfaces(fixture('debian12/interfaces'), keep);
    expect(text).toContain('iface eth0 inet static\n\taddress 192.168.10.5/24\n\tgateway 192.168.10.1');
  });
});

describe('udev persistent-net rules', () => {
  it('the rule bound to the source MAC goes; comments and other rules stay', () => {
    const { text, changes } = removeMacRules(fixture('debian12/70-persistent-net.rules'), '70-persistent-net.rules');
    expect(text).not.toContain('52:54:00:12:34:56');
    expect(text).toContain('KERNEL=="wlan*", NAME="wlan0"');
    expect(text).toContain('# PCI device 0x1af4:0x1000 (virtio-pci)');
    expect(changes).toEqual(['70-persistent-net.rules:5: rule bound to MAC 52:54:00:12:34:56 removed']);
  });
});

describe('netplan', () => {
  it('match by MAC relaxed to a name pattern, set-name removed, the static primary falls back to DHCP; the comment stays', () => {
    const { text, changes } = rewriteNetplan(fixture('debian12/netplan.yaml'), dhcp, '50-cloud-init.yaml');
    const doc = parse(text);
    expect(doc.network.ethernets.ens3).toEqual({ match: { name: 'e*' }, dhcp4: true, nameservers: { addresses: ['192.168.10.1'] } });
    expect(text.startsWith('# written by cloud-init')).toBe(true);
    expect(changes).toHaveLength(3);
    expect(rewriteNetplan(text, dhcp, 'x')).toEqual({ text, changes: [] });
  });

  it('an entry keyed by a missing NIC name and matching nothing is re-keyed eth0', () => {
    const { text } = rewriteNetplan('network:\n  version: 2\n  ethernets:\n    enp0s3:\n      dhcp4: true\n', dhcp, 'x');
    expect(parse(text).network.ethernets).toEqual({ eth0: { dhcp4: true } });
  });
});

describe('RHEL ifcfg', () => {
  it('HWADDR commented out, DEVICE=eth0, BOOTPROTO=dhcp with the static lines commented out', () => {
    const before = fixture('rhel8/ifcfg-ens192');
    const { text } = rewriteIfcfg(before, { ...dhcp, primary: true }, 'ifcfg-ens192');
    const live = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(live).toContain('DEVICE=eth0');
    expect(live).toContain('BOOTPROTO=dhcp');
    expect(live.some((l) => /^(HWADDR|IPADDR|PREFIX|GATEWAY)=/.test(l))).toBe(false);
    expect(live).toContain('DNS1=10.0.0.1');
    expect(text).toContain('#ferry# HWADDR=00:50:56:AB:CD:EF');
    expect(rewriteIfcfg(text, { ...dhcp, primary: true }, 'x')).toEqual({ text, changes: [] });
  });

  it('keepStaticNetwork: only the MAC binding and the name change', () => {
    const { text } = rewriteIfcfg(fixture('rhel8/ifcfg-ens192'), { ...keep, primary: true }, 'x');
    expect(text).toContain('\nIPADDR=10.0.0.20\n');
    expect(text).toContain('\nBOOTPROTO=none\n');
    expect(text).toContain('#ferry# HWADDR=');
  });
});

describe('NetworkManager keyfile', () => {
  it('mac-address and the missing interface-name go; ipv4 manual → auto with its address commented out; ipv6 untouched', () => {
    const before = fixture('rhel8/ens192.nmconnection');
    const { text } = rewriteNmProfile(before, { ...dhcp, primary: true }, 'ens192.nmconnection');
    const live = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(live.some((l) => /mac-address|interface-name|address1/.test(l))).toBe(false);
    expect(text).toContain('[ipv4]\n#ferry# address1=10.0.0.20/24,10.0.0.1\ndns=10.0.0.1;\nmethod=auto\n');
    expect(text).toContain('[ipv6]\naddr-gen-mode=eui64\nmethod=auto\n');
    expect(rewriteNmProfile(text, { ...dhcp, primary: true }, 'x')).toEqual({ text, changes: [] });
  });
});

describe('a second NIC (recorded from servers with a backend network)', () => {
  it("netplan: the primary (the one with the default route) matched by the old driver and name → e* on DHCP; the backend entry loses its MAC match and set-name and does not match eth0; again: nothing", () => {
    const before = fixture('debian12/netplan-two-nics.yaml');
    const { text, changes } = rewriteNetplan(before, dhcp, '50-cloud-init.yaml');
    const eths = parse(text).network.ethernets;
    expect(eths.ens3).toEqual({ match: { name: 'e*' }, dhcp4: true });
    expect(eths.backend).toEqual({ addresses: ['192.168.50.5/24'] });
    expect(changes).toContain('50-cloud-init.yaml: ethernets.ens3: match by driver vmxnet3, name ens3 → by name e* (the target\'s NICs, net.ifnames=0)');
    expect(text.startsWith('# This file is generated from information provided by the datasource.')).toBe(true);
    expect(rewriteNetplan(text, dhcp, 'x')).toEqual({ text, changes: [] });
  });

  it('ifcfg: the backend NIC keeps its address, loses its MAC binding and does not start at boot (the target has no ens224)', () => {
    const { text, changes } = rewriteIfcfg(fixture('rhel8/ifcfg-ens224'), { ...dhcp, primary: false }, 'ifcfg-ens224');
    const live = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(live).toEqual(expect.arrayContaining(['DEVICE=ens224', 'ONBOOT=no', 'IPADDR=192.168.50.20', 'BOOTPROTO=none']));
    expect(text).toContain('#ferry# HWADDR=00:50:56:AB:CD:F0');
    expect(changes).toHaveLength(2);
    expect(rewriteIfcfg(text, { ...dhcp, primary: false }, 'x')).toEqual({ text, changes: [] });
  });

  it('NetworkManager: the backend profile, unbound from ens224 and its MAC, gets autoconnect=false so it cannot take eth0; its static address stays', () => {
    const before = fixture('rhel8/backend.nmconnection');
    const { text } = rewriteNmProfile(before, { ...dhcp, primary: false }, 'backend.nmconnection');
    expect(text).toContain('[connection]\nid=backend\nuuid=7e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b\ntype=ethernet\n#ferry# interface-name=ens224\npermissions=\nautoconnect=false\n\n[ethernet]\n#ferry# mac-address=00:50:56:AB:CD:F0\n');
    expect(text).toContain('[ipv4]\naddress1=192.168.50.20/24\ndns-search=\nmethod=manual\n');
    expect(rewriteNmProfile(text, { ...dhcp, primary: false }, 'x')).toEqual({ text, changes: [] });
    // A profile that says autoconnect=true is switched off the same way.
    expect(rewriteNmProfile(before.replace('permissions=\n', 'autoconnect=true\n'), { ...dhcp, primary: false }, 'x').text).toContain('\nautoconnect=false\n\n[ethernet]');
  });

  it('in a RHEL tree with both NICs: the one with the gateway is the primary (eth0, DHCP) whatever the file order, and a second configure run changes nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-net-unit-'));
    try {
      const put = (p: string, text: string) => {
        mkdirSync(join(root, dirname(p)), { recursive: true });
        writeFileSync(join(root, p), text);
      };
      put('etc/sysconfig/network-scripts/ifcfg-ens192', fixture('rhel8/ifcfg-ens192'));
      put('etc/sysconfig/network-scripts/ifcfg-ens224', fixture('rhel8/ifcfg-ens224'));
      put('etc/NetworkManager/system-connections/backend.nmconnection', fixture('rhel8/backend.nmconnection'));
      put('etc/NetworkManager/system-connections/ens192.nmconnection', fixture('rhel8/ens192.nmconnection'));
      const files = new TargetFiles(root);
      const distro = detectDistro(fixture('rhel8/os-release'), () => true);
      const resolver = new DeviceResolver([]);
      const first = await rewriteFiles(files, distro, resolver, dhcp);
      expect(first).toContain('/etc/sysconfig/network-scripts/ifcfg-ens192 renamed ifcfg-eth0');
      const read = (p: string) => readFileSync(join(root, p), 'utf8');
      expect(read('etc/sysconfig/network-scripts/ifcfg-eth0')).toMatch(/\nDEVICE=eth0\nONBOOT=yes\n/);
      expect(read('etc/sysconfig/network-scripts/ifcfg-ens224')).toContain('\nDEVICE=ens224\nONBOOT=no\n');
      expect(read('etc/NetworkManager/system-connections/ens192.nmconnection')).toContain('\nmethod=auto\n');
      expect(read('etc/NetworkManager/system-connections/backend.nmconnection')).toContain('\nautoconnect=false\n');
      expect(read('etc/NetworkManager/system-connections/backend.nmconnection')).toContain('\nmethod=manual\n');
      expect(await rewriteFiles(files, distro, resolver, dhcp)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
