import fc from "fast-check";
import type { z } from "zod";

/**
 * fast-check generators walked from a zod schema: values that mostly meet it (so requests
 * reach the handlers) and, mixed in at every level, values that do not (wrong types, missing
 * and extra fields, unknown enum values, oversize strings, NUL bytes, lone surrogates).
 */
export interface ArbitraryOptions {
  /** Weight of a hostile value against a well-formed one at each level (default 1 in 5). */
  hostile?: number;
  /** Longest well-formed string generated, whatever the schema allows (default 40). */
  maxString?: number;
}

type Def = { type: string; [k: string]: any };
const defOf = (s: z.ZodType): Def => (s as any)._zod.def as Def;
const checksOf = (d: Def): Def[] => (d.checks ?? []).map((c: any) => c._zod.def as Def);

/** A value no schema field wants, in every JSON type and a few strings that break stores. */
export function hostileValue(): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, "", " ", [], {}, [null], { "": null }),
    fc.constantFrom("\u0000", "a\u0000b", "\ud800", "nope-not-a-value", "../../etc/passwd", "%ZZ", "\r\nX-Injected: 1", "<script>"),
    fc.string({ unit: "binary", maxLength: 20 }),
    fc.integer().map((n) => "x".repeat(1_000 + Math.abs(n % 70_000))),
    fc.jsonValue({ maxDepth: 2 }),
  );
}

/**
 * fast-check generates from a regex without flags or lookaheads: a leading length lookahead
 * is left to the length filter, and `i` dropped (lowercase still matches). Otherwise: none.
 */
function matchingArb(pattern: RegExp): fc.Arbitrary<string> | undefined {
  try {
    return fc.stringMatching(new RegExp(pattern.source.replace(/^\^\(\?=[^()]*\)/, "^")));
  } catch {
    return undefined;
  }
}

function stringArb(d: Def, maxString: number): fc.Arbitrary<string> {
  let min = 0;
  let max = Number.POSITIVE_INFINITY;
  let pattern: RegExp | undefined;
  let format: string | undefined = d.format;
  for (const c of checksOf(d)) {
    if (c.check === "min_length") min = Math.max(min, c.minimum);
    if (c.check === "max_length") max = Math.min(max, c.maximum);
    if (c.check === "length_equals") min = max = c.length;
    if (c.check === "string_format") {
      format = c.format;
      if (c.pattern instanceof RegExp) pattern = c.pattern;
    }
  }
  if (format === "uuid" || format === "guid") return fc.uuid({ version: [4, 7] });
  const matching = pattern && matchingArb(pattern);
  if (matching) return matching.filter((s) => s.length >= min && s.length <= max);
  const upTo = Math.max(min, Math.min(max, maxString));
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ minLength: min, maxLength: upTo }) },
    // The longest allowed, and one past it.
    { weight: 1, arbitrary: fc.constantFrom(...(Number.isFinite(max) ? ["y".repeat(max), "y".repeat(max + 1)] : ["y".repeat(upTo)])) },
  );
}

function numberArb(d: Def): fc.Arbitrary<number> {
  let min = -1_000_000;
  let max = 1_000_000;
  let integer = false;
  for (const c of checksOf(d)) {
    if (c.check === "greater_than") min = c.inclusive ? c.value : c.value + 1;
    if (c.check === "less_than") max = c.inclusive ? c.value : c.value - 1;
    if (c.check === "number_format" && /int/.test(c.format)) integer = true;
  }
  const inRange = integer ? fc.integer({ min: Math.ceil(min), max: Math.floor(max) }) : fc.double({ min, max, noNaN: true });
  return fc.oneof({ weight: 4, arbitrary: inRange }, { weight: 1, arbitrary: fc.constantFrom(min - 1, max + 1, 0.5, -0) });
}

/** An object as its shape says, then with a required field left out or an unknown one added, now and then. */
function objectArb(d: Def, o: Required<ArbitraryOptions>): fc.Arbitrary<Record<string, unknown>> {
  const shape = d.shape as Record<string, z.ZodType>;
  const entries = Object.entries(shape).map(([k, v]) => fc.tuple(fc.constant(k), arbitraryOf(v, o)));
  const keys = Object.keys(shape);
  return fc
    .tuple(
      fc.tuple(...entries),
      fc.option(fc.constantFrom(...(keys.length ? keys : ["none"]))),
      fc.option(fc.tuple(fc.string({ maxLength: 12 }), hostileValue())),
    )
    .map(([pairs, drop, extra]) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of pairs) if (v !== undefined && k !== drop) out[k] = v;
      if (extra) out[extra[0]] = extra[1];
      return out;
    });
}

function wellFormed(s: z.ZodType, o: Required<ArbitraryOptions>): fc.Arbitrary<unknown> {
  const d = defOf(s);
  switch (d.type) {
    case "string":
      return stringArb(d, o.maxString);
    case "number":
      return numberArb(d);
    case "boolean":
      return fc.boolean();
    case "enum":
      return fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom(...Object.values(d.entries as Record<string, string>)) },
        { weight: 1, arbitrary: fc.constant("not-in-enum") },
      );
    case "literal":
      return fc.constantFrom(...(d.values as unknown[]));
    case "optional":
    case "default":
      return fc.option(arbitraryOf(d.innerType, o), { nil: undefined, freq: 3 });
    case "nullable":
      return fc.option(arbitraryOf(d.innerType, o), { nil: null, freq: 3 });
    case "pipe":
      return arbitraryOf(d.in, o);
    case "union":
      return fc.oneof(...(d.options as z.ZodType[]).map((x) => arbitraryOf(x, o)));
    case "array": {
      const max = checksOf(d).find((c) => c.check === "max_length")?.maximum ?? 3;
      return fc.array(arbitraryOf(d.element, o), { maxLength: Math.min(max, 3) });
    }
    case "object":
      return objectArb(d, o);
    case "record":
      return fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

export function arbitraryOf(schema: z.ZodType, options: ArbitraryOptions = {}): fc.Arbitrary<unknown> {
  const o: Required<ArbitraryOptions> = { hostile: options.hostile ?? 1, maxString: options.maxString ?? 40 };
  return fc.oneof({ weight: 5, arbitrary: wellFormed(schema, o) }, { weight: o.hostile, arbitrary: hostileValue() });
}
