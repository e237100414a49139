import { isIPv4, isIPv6 } from "node:net";

/**
 * The unit a per-address limit counts: an IPv4 address, or the /64 of an IPv6 one. One
 * IPv6 subscriber is usually handed a whole /64, so counting single addresses would give
 * it 2^64 fresh allowances. IPv4 written as IPv6 (`::ffff:a.b.c.d`) counts as IPv4.
 */
export function addressBucket(address: string): string {
  const bare = address.replace(/%.*$/, "");
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(bare)) return address;
  return `${ipv6Groups(bare).slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros; a trailing dotted quad is two groups. */
function ipv6Groups(address: string): string[] {
  const split = (part: string) =>
    part
      ? part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [g];
          const [a, b, c, d] = g.split(".").map(Number) as [number, number, number, number];
          return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
        })
      : [];
  const [head, tail] = address.split("::") as [string, string | undefined];
  const front = split(head);
  const back = tail === undefined ? [] : split(tail);
  const zeros = tail === undefined ? [] : Array<string>(8 - front.length - back.length).fill("0");
  return [...front, ...zeros, ...back].map((g) => Number.parseInt(g, 16).toString(16));
}
