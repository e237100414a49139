import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * Addresses no server on the internet has: this host, private networks, link-local, shared
 * (CGNAT), documentation and benchmark ranges, multicast and reserved space. Connections a
 * tenant can aim (direct-to-MX delivery, webhooks) refuse them, or a DNS record or a URL
 * could point them at the inside network (a metadata endpoint, a database).
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
  ["192.88.99.0", 24],
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
  // Teredo: the IPv4 address it tunnels to is hidden in the address.
  ["2001::", 32],
  // Benchmarking, ORCHID (v1 and v2): never routed.
  ["2001:2::", 48],
  ["2001:10::", 28],
  ["2001:20::", 28],
  ["2001:db8::", 32],
  // Documentation (RFC 9637) and SRv6 segment identifiers.
  ["3fff::", 20],
  ["5f00::", 16],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const)
  special.addSubnet(net, bits, "ipv6");

/**
 * IPv4 inside IPv6 (mapped, compatible, NAT64) in a spelling embeddedV4 does not read:
 * refused whole. A list of its own: BlockList matches IPv4 addresses against such rules too.
 */
const carriesV4 = new BlockList();
for (const [net, bits] of [
  ["::ffff:0:0", 96],
  ["::", 96],
  ["64:ff9b::", 96],
] as const)
  carriesV4.addSubnet(net, bits, "ipv6");

/** The IPv4 address an IPv6 one carries (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::), if any. */
function embeddedV4(ip: string): string | null {
  const sixToFour = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4})(:|$)/i.exec(ip);
  if (sixToFour) return v4OfHex(sixToFour[1]!, sixToFour[2]!);
  const m = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1]!;
  // The same forms written in hex: ::ffff:7f00:1.
  const h = /^(?:::ffff:(?:0:)?|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  return h ? v4OfHex(h[1]!, h[2]!) : null;
}

function v4OfHex(high: string, low: string): string {
  const hi = Number.parseInt(high, 16);
  const lo = Number.parseInt(low, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for an address no connection we make on a tenant's behalf may go to (and for anything that is not an address). */
export function isSpecialUse(ip: string): boolean {
  if (isIPv4(ip)) return special.check(ip, "ipv4");
  if (!isIPv6(ip)) return true;
  const v4 = embeddedV4(ip);
  if (v4) return special.check(v4, "ipv4");
  return special.check(ip, "ipv6") || carriesV4.check(ip, "ipv6");
}
