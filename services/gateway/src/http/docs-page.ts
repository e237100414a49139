import type { oas31 } from "zod-openapi";

/**
 * A reference page rendered on the server from the OpenAPI document: readable without
 * JavaScript or anything fetched from elsewhere, and never out of step with the document.
 */
type Schema = oas31.SchemaObject & { $ref?: string; const?: unknown; contentMediaType?: string };
type Operation = oas31.OperationObject;

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Backticks in the document's prose are code. */
const prose = (s: string | undefined) => (s ? esc(s).replace(/`([^`]+)`/g, "<code>$1</code>") : "");
const refName = (ref: string) => ref.split("/").pop() ?? ref;
const isRef = (x: unknown): x is oas31.ReferenceObject => typeof x === "object" && x !== null && "$ref" in x;

function typeLabel(s: Schema | oas31.ReferenceObject | undefined): string {
  if (!s) return "any";
  if (isRef(s)) return `<a href="#schema-${esc(refName(s.$ref))}">${esc(refName(s.$ref))}</a>`;
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return alternatives.map((a) => typeLabel(a as Schema)).join(" | ");
  if (s.const !== undefined) return `<code>${esc(JSON.stringify(s.const))}</code>`;
  if (s.enum) return s.enum.map((v) => `<code>${esc(JSON.stringify(v))}</code>`).join(" | ");
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (!types.length) return s.contentMediaType ? `bytes (${esc(s.contentMediaType)})` : "any";
  return types
    .map((t) => {
      if (t === "array") return `${typeLabel(s.items as Schema | undefined)}[]`;
      if (t === "string" && s.contentMediaType) return `bytes (${esc(s.contentMediaType)})`;
      if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object")
        return `map of ${typeLabel(s.additionalProperties as Schema)}`;
      return s.format ? `${t} (${esc(s.format)})` : t;
    })
    .join(" | ");
}

function constraints(s: Schema): string {
  const bits: string[] = [];
  if (s.default !== undefined) bits.push(`default <code>${esc(JSON.stringify(s.default))}</code>`);
  if (s.minLength !== undefined) bits.push(`min length ${s.minLength}`);
  if (s.maxLength !== undefined) bits.push(`max length ${s.maxLength}`);
  if (s.minimum !== undefined) bits.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bits.push(`≤ ${s.maximum}`);
  if (s.maxItems !== undefined) bits.push(`at most ${s.maxItems} items`);
  return bits.length ? ` <span class="note">${bits.join(", ")}</span>` : "";
}

/** The fields of an object, nested objects inline; anything else as its type. */
function schemaHtml(s: Schema | oas31.ReferenceObject | undefined): string {
  if (!s || isRef(s) || !s.properties) return `<p class="type">${typeLabel(s)}${s && !isRef(s) ? constraints(s) : ""}</p>`;
  const required = new Set(s.required ?? []);
  const rows = Object.entries(s.properties).map(([name, p]) => {
    const field = p as Schema;
    const inner = isRef(field)
      ? undefined
      : field.properties
        ? field
        : field.type === "array" && field.items && !isRef(field.items) && (field.items as Schema).properties
          ? (field.items as Schema)
          : undefined;
    return (
      `<li><code>${esc(name)}</code> <span class="type">${typeLabel(field)}</span>` +
      `${required.has(name) ? ' <span class="req">required</span>' : ""}${isRef(field) ? "" : constraints(field)}` +
      `${!isRef(field) && field.description ? ` — ${prose(field.description)}` : ""}${inner ? schemaHtml(inner) : ""}</li>`
    );
  });
  return `<ul class="fields">${rows.join("")}</ul>`;
}

function parametersHtml(params: Operation["parameters"]): string {
  if (!params?.length) return "";
  const rows = params.map((x) => {
    const p = x as oas31.ParameterObject;
    const s = p.schema as Schema | undefined;
    return `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${typeLabel(s)}${s && !isRef(s) ? constraints(s) : ""}</td><td>${p.required ? "yes" : ""}</td><td>${prose(p.description ?? (s && !isRef(s) ? s.description : ""))}</td></tr>`;
  });
  return `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th></th></tr>${rows.join("")}</table>`;
}

/** A body or reply: a named schema is spelled out here too, so a route reads on its own. */
function contentHtml(content: oas31.ContentObject | undefined, schemas: Record<string, Schema>): string {
  return Object.entries(content ?? {})
    .map(([type, media]) => {
      const s = media.schema as Schema | oas31.ReferenceObject | undefined;
      const named = s && isRef(s) ? schemas[refName(s.$ref)] : undefined;
      return `<p class="media">${esc(type)}${named ? `: ${typeLabel(s)}` : ""}</p>${schemaHtml(named ?? s)}`;
    })
    .join("");
}

function operationHtml(method: string, path: string, op: Operation, keyOf: Map<string, string>, schemas: Record<string, Schema>): string {
  const keys = [...new Set((op.security ?? []).flatMap((req) => Object.keys(req).map((k) => keyOf.get(k) ?? k)))];
  const body = op.requestBody as oas31.RequestBodyObject | undefined;
  const responses = Object.entries(op.responses as oas31.ResponsesObject).map(([status, r]) => {
    const res = r as oas31.ResponseObject;
    return status.startsWith("2")
      ? `<h5>${esc(status)} ${prose(res.description)}</h5>${contentHtml(res.content, schemas)}`
      : `<p class="error"><b>${esc(status)}</b> ${prose(res.description)}</p>`;
  });
  return (
    `<article id="${esc(op.operationId)}"><h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>` +
    `<p class="summary">${prose(op.summary)}</p>${op.description ? `<p>${prose(op.description)}</p>` : ""}` +
    `<p class="keys">${keys.length ? `Keys: ${keys.map((k) => `<code>${esc(k)}</code>`).join(", ")}` : "No key needed"}</p>` +
    parametersHtml(op.parameters) +
    (body ? `<h4>Request body${body.required ? "" : " (optional)"}</h4>${contentHtml(body.content, schemas)}` : "") +
    `<h4>Responses</h4>${responses.join("")}<p class="note">Errors are <a href="#schema-Error">Error</a>.</p></article>`
  );
}

export function renderDocsPage(doc: oas31.OpenAPIObject): string {
  const schemes = (doc.components?.securitySchemes ?? {}) as Record<string, oas31.SecuritySchemeObject>;
  const schemas = (doc.components?.schemas ?? {}) as Record<string, Schema>;
  // Scheme names → the key prefix their description leads with (`sa_`, `tk_` …).
  const keyOf = new Map(Object.entries(schemes).map(([name, s]) => [name, /`(\w+_)`/.exec(s.description ?? "")?.[1] ?? name]));
  const ops = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    METHODS.flatMap((m) => (item[m] ? [{ method: m, path, op: item[m] as Operation }] : [])),
  );
  const sections = (doc.tags ?? []).map((tag) => {
    const mine = ops.filter((o) => o.op.tags?.[0] === tag.name);
    return `<section id="tag-${esc(tag.name)}"><h2>${esc(tag.name)}</h2><p>${prose(tag.description)}</p>${mine.map((o) => operationHtml(o.method, o.path, o.op, keyOf, schemas)).join("")}</section>`;
  });
  const nav = (doc.tags ?? []).map((tag) => {
    const links = ops
      .filter((o) => o.op.tags?.[0] === tag.name)
      .map((o) => `<li><a href="#${esc(o.op.operationId)}">${o.method.toUpperCase()} ${esc(o.path)}</a></li>`);
    return `<h4>${esc(tag.name)}</h4><ul>${links.join("")}</ul>`;
  });
  const keyRows = Object.entries(schemes).map(([name, s]) => `<tr><td><code>${esc(name)}</code></td><td>${prose(s.description)}</td></tr>`);
  const named = Object.entries(schemas).map(([name, s]) => `<article id="schema-${esc(name)}"><h3>${esc(name)}</h3>${schemaHtml(s)}</article>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)}</title><style>${STYLE}</style></head><body>
<nav><p><a href="#top">${esc(doc.info.title)}</a></p><p><a href="/v1/openapi.json">openapi.json</a></p>${nav.join("")}</nav>
<main id="top"><h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1><p>${prose(doc.info.description)}</p>
<p>The same, as an OpenAPI ${esc(doc.openapi)} document: <a href="/v1/openapi.json">/v1/openapi.json</a>.</p>
<section id="keys"><h2>Keys</h2><table>${keyRows.join("")}</table></section>
${sections.join("\n")}
<section id="schemas"><h2>Schemas</h2>${named.join("\n")}</section></main></body></html>`;
}

const STYLE = `
body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1d2430;display:flex}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:300px;flex:none;padding:12px 16px;background:#f5f6f8;border-right:1px solid #dde1e6;font-size:13px}
nav ul{list-style:none;padding:0;margin:0 0 8px}nav li{overflow-wrap:anywhere;margin-bottom:2px}nav a{color:#1d2430;text-decoration:none}nav h4{margin:12px 0 4px}
main{padding:16px 32px;max-width:1000px}h1 small{font-size:14px;color:#667}
article{border-top:1px solid #dde1e6;padding:8px 0 16px}h3{margin:8px 0;font-size:17px}h4{margin:12px 0 4px;font-size:14px}h5{margin:8px 0 4px;font-size:14px}
.method{display:inline-block;min-width:56px;text-align:center;border-radius:4px;color:#fff;font-size:12px;padding:2px 6px;vertical-align:middle}
.get{background:#2f7d32}.post{background:#1f5fbf}.patch{background:#b26a00}.delete{background:#b3261e}.put{background:#6a3fb5}
code{font:13px ui-monospace,monospace;background:#f0f2f5;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #dde1e6;padding:3px 8px;text-align:left;vertical-align:top}
ul.fields{margin:4px 0;padding-left:20px}.type{color:#4b5563}.req{color:#b3261e;font-size:12px}.note{color:#667;font-size:13px}
.media{margin:4px 0;font-size:13px;color:#667}.error{margin:2px 0;font-size:14px}.summary{font-weight:600}
`;
