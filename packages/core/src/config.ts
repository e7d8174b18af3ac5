/**
 * Validating a config object against a schema with an error that names every bad field, what it
 * expected and what it got. Typed structurally on `safeParse` so core does not depend on zod while
 * the paper packages pass zod schemas (any schema with zod's `safeParse` result shape works).
 */

export interface SchemaIssue {
  path: readonly PropertyKey[];
  message: string;
}

export interface SafeParseSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: { issues: readonly SchemaIssue[] } };
}

function pathGet(obj: unknown, path: readonly PropertyKey[]): unknown {
  let o = obj;
  for (const k of path) o = o !== null && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined;
  return o;
}

/** The message for a failed parse: `<what> config: a.b: <message> (got <value>); ...`. */
export function configIssuesMessage(what: string, issues: readonly SchemaIssue[], input: unknown): string {
  const shown = (v: unknown) => (v === undefined ? 'undefined' : JSON.stringify(v));
  return `${what} config: ${issues
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message} (got ${shown(pathGet(input, i.path))})`)
    .join('; ')}`;
}

/** `schema.safeParse(input)`, returning the parsed value or throwing with every issue named. */
export function parseConfig<T>(what: string, schema: SafeParseSchema<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new Error(configIssuesMessage(what, r.error.issues, input));
  return r.data;
}
