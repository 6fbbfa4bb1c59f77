// The API page: renders this server's /openapi.json (operations grouped by tag, with
// their parameters, bodies, security and error codes). Builds the DOM with
// textContent only: nothing in the document is read as HTML.
import { say } from "/ui/page.js";

const METHODS = ["get", "post", "put", "patch", "delete"];
const SECURITY_WORDS = {
  bearer: "an access token",
  admin: "an access token with the admin role",
  refresh_cookie: "the refresh cookie",
  csrf_header: "the X-Latchkey-CSRF header",
  client_basic: "OAuth client credentials",
  feed_secret: "the revocation feed secret",
};

/** An element with children (nodes or strings). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Text with `backticks` as <code>. */
function prose(text) {
  const span = el("span");
  (text || "").split("`").forEach((part, i) => span.append(i % 2 ? el("code", { text: part }) : part));
  return span;
}

function resolve(doc, schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 10) {
    const name = schema.$ref.split("/").pop();
    schema = { ...doc.components.schemas[name], title: name };
  }
  return schema || {};
}

/** A short type: "string (uuid)", "array of Session", "one of: A, B". */
function typeOf(doc, schema) {
  const named = schema.$ref ? schema.$ref.split("/").pop() : null;
  schema = resolve(doc, schema);
  if (schema.allOf) return schema.allOf.map((s) => typeOf(doc, s)).join(" + ");
  if (schema.oneOf) return `one of: ${schema.oneOf.map((s) => typeOf(doc, s)).join(", ")}`;
  let type = Array.isArray(schema.type) ? schema.type.filter((t) => t !== "null").join(" or ") : schema.type;
  if (type === "array") return `array of ${typeOf(doc, schema.items || {})}`;
  if (named && (type === "object" || !type)) return named;
  type = type || "any";
  if (schema.format) type += ` (${schema.format})`;
  if (schema.enum) type += `: ${schema.enum.join(", ")}`;
  if (schema.pattern) type += ` matching ${schema.pattern}`;
  return type;
}

/** Rows for an object's fields, nested objects indented (to a bounded depth). */
function fieldRows(doc, schema, depth, rows) {
  schema = resolve(doc, schema);
  const parts = schema.allOf || schema.oneOf || [schema];
  for (const part of parts.map((p) => resolve(doc, p))) {
    const required = new Set(part.required || []);
    for (const [name, field] of Object.entries(part.properties || {})) {
      const inner = resolve(doc, field.type === "array" ? field.items || {} : field);
      rows.push(el("tr", { class: `depth-${depth}` },
        el("td", {}, el("code", { text: name })),
        el("td", { text: typeOf(doc, field) }),
        el("td", { text: required.has(name) ? "yes" : "no" }),
        el("td", {}, prose(field.description || inner.description || ""))));
      if (inner.properties && depth < 3) fieldRows(doc, inner, depth + 1, rows);
    }
  }
  return rows;
}

function fieldTable(doc, schema, caption) {
  const rows = fieldRows(doc, schema, 0, []);
  if (!rows.length) return el("p", {}, `${caption}: `, el("code", { text: typeOf(doc, schema) }));
  return el("table", { class: "fields" },
    el("caption", { class: "hint", text: caption }),
    el("thead", {}, el("tr", {}, ...["Field", "Type", "Required", "Meaning"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows));
}

function security(operation) {
  const options = operation.security;
  if (!options || !options.length) return el("p", { class: "security" }, "Anyone may call it.");
  const open = options.some((req) => !Object.keys(req).length);
  const words = options.filter((req) => Object.keys(req).length)
    .map((req) => Object.keys(req).map((n) => SECURITY_WORDS[n] || n).join(" and "));
  const text = open ? `Anyone may call it; it also reads ${words.join(", or ")}.` : `Needs ${words.join(", or ")}.`;
  return el("p", { class: "security" }, text);
}

function errorCodes(doc, content) {
  const schema = content && content["application/json"] && content["application/json"].schema;
  const narrowed = schema && schema.allOf && schema.allOf.find((s) => s.properties && s.properties.code);
  return narrowed ? narrowed.properties.code.enum || [] : [];
}

function response(doc, status, answer) {
  const item = el("li", {}, el("span", { class: "status-code", text: status }), prose(answer.description));
  const codes = errorCodes(doc, answer.content);
  if (codes.length) {
    item.append(el("ul", { class: "error-codes", "aria-label": `Codes of ${status}` },
      ...codes.map((c) => el("li", {}, el("code", { text: c })))));
  } else {
    for (const [type, body] of Object.entries(answer.content || {})) {
      item.append(body.schema ? fieldTable(doc, body.schema, `Body (${type})`) : el("p", { text: type }));
    }
  }
  return item;
}

function operationView(doc, path, method, operation) {
  const id = operation.operationId || `${method}-${path}`;
  const body = el("div", { class: "body" });
  if (operation.description) body.append(el("p", {}, prose(operation.description)));
  body.append(security(operation));
  const params = operation.parameters || [];
  if (params.length) {
    body.append(el("h4", { text: "Parameters" }), el("table", { class: "fields" },
      el("thead", {}, el("tr", {}, ...["Name", "In", "Type", "Required", "Meaning"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...params.map((p) => el("tr", {},
        el("td", {}, el("code", { text: p.name })), el("td", { text: p.in }),
        el("td", { text: typeOf(doc, p.schema || {}) }), el("td", { text: p.required ? "yes" : "no" }),
        el("td", {}, prose(p.description)))))));
  }
  if (operation.requestBody) {
    body.append(el("h4", { text: "Request body" }));
    if (operation.requestBody.description) body.append(el("p", {}, prose(operation.requestBody.description)));
    for (const [type, content] of Object.entries(operation.requestBody.content || {})) {
      body.append(fieldTable(doc, content.schema || {}, `${type}${operation.requestBody.required ? "" : " (optional)"}`));
    }
  }
  body.append(el("h4", { text: "Responses" }), el("ul", { class: "responses" },
    ...Object.entries(operation.responses || {}).map(([status, answer]) => response(doc, status, answer))));
  const details = el("details", { class: "op", id },
    el("summary", {}, el("h3", {},
      el("span", { class: "method", "data-method": method, text: method.toUpperCase() }),
      el("span", { class: "path", text: path }),
      el("span", { class: "summary", text: operation.summary || "" }))),
    body);
  details.dataset.search = [method, path, operation.summary, operation.description,
    ...Object.values(operation.responses || {}).flatMap((a) => errorCodes(doc, a.content))].join(" ").toLowerCase();
  return details;
}

function render(doc) {
  const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS.filter((m) => item[m])) {
      const tag = (item[method].tags || ["other"])[0];
      if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
      groups.get(tag).ops.push(operationView(doc, path, method, item[method]));
    }
  }
  const contents = el("ul");
  const operations = document.getElementById("operations");
  for (const { tag, ops } of groups.values()) {
    if (!ops.length) continue;
    const id = `tag-${tag.name}`;
    contents.append(el("li", {}, el("a", { href: `#${id}`, text: `${tag.name} (${ops.length})` })));
    operations.append(el("section", { id, "aria-labelledby": `${id}-title` },
      el("h2", { id: `${id}-title`, text: tag.name }),
      tag.description ? el("p", { class: "hint" }, prose(tag.description)) : null,
      ...ops));
  }
  document.getElementById("contents").append(contents);
  return operations.querySelectorAll(".op").length;
}

function filter(total) {
  const words = document.getElementById("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const section of document.querySelectorAll("#operations section")) {
    let any = false;
    for (const op of section.querySelectorAll(".op")) {
      const match = words.every((w) => op.dataset.search.includes(w));
      op.hidden = !match;
      any ||= match;
      shown += match ? 1 : 0;
    }
    section.hidden = !any;
  }
  document.getElementById("match-count").textContent =
    words.length ? `${shown} of ${total} operations match.` : `${total} operations.`;
}

async function main() {
  let doc;
  try {
    const answer = await fetch("/openapi.json", { headers: { accept: "application/json" } });
    if (!answer.ok) throw new Error(`status ${answer.status}`);
    doc = await answer.json();
  } catch {
    say("The API document could not be loaded. Reload the page to try again.", "error");
    return;
  }
  const total = render(doc);
  document.getElementById("status").textContent = "";
  const version = doc.info && doc.info.version ? ` version ${doc.info.version}` : "";
  document.getElementById("intro").prepend(el("strong", { text: `${doc.info.title}${version}. ` }));
  document.getElementById("filter").addEventListener("input", () => filter(total));
  filter(total);
  if (location.hash) document.getElementById(location.hash.slice(1))?.setAttribute("open", "");
  document.body.dataset.ready = "true";
}

main();
