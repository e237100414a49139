import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * Addresses no mail server on the internet has: this host, private networks, link-local,
 * shared (CGNAT), documentation and benchmark ranges, multicast and reserved space. Direct
 * delivery refuses them, or a DNS record could aim our connections at the inside network.
 */
const special = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  special.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const)
  special.addSubnet(net, bits, "ipv6");

/** The IPv4 address an IPv6 one carries (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d), if any. */
function embeddedV4(ip: string): string | null {
  const m = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  // The same forms written in hex: ::ffff:7f00:1.
  const h = /^(?:::ffff:(?:0:)?|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (!h) return null;
  const hi = Number.parseInt(h[1]!, 16);
  const lo = Number.parseInt(h[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isSpecialUse(ip: string): boolean {
  if (isIPv4(ip)) return special.check(ip, "ipv4");
  if (!isIPv6(ip)) return true;
  const v4 = embeddedV4(ip);
  if (v4) return special.check(v4, "ipv4");
  return special.check(ip, "ipv6");
}
