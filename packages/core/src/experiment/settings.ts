/**
 * Experiment settings tables (one entry per preset) parsed through a schema, so a misspelt or
 * out-of-range field fails when the experiment module loads instead of being silently ignored.
 */
import { parseConfig, type SafeParseSchema } from '../config.js';

/**
 * Parses `inputs[name]` with `schema(name)` for every preset name (the schema may take defaults from
 * the package's config preset of that name); errors name the table, the preset, the field, what it
 * expected and what it got (`parseConfig`), e.g. `liquid.init settings [small] config: steps: ...`.
 */
export function parsePresets<N extends string, T>(
  what: string,
  inputs: Record<N, unknown>,
  schema: (name: NoInfer<N>) => SafeParseSchema<T>,
): Record<N, T> {
  // null prototype: SETTINGS[name] for a name that is no preset (`constructor`, `toString`) is undefined
  const out = Object.create(null) as Record<N, T>;
  for (const name of Object.keys(inputs) as N[]) out[name] = parseConfig(`${what} [${name}]`, schema(name), inputs[name]);
  return out;
}
