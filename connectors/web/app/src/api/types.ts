// Types of the gateway's HTTP API, taken from src/api/schema.d.ts: that file is generated
// from the gateway's OpenAPI schema by openapi-typescript (regenerate it with
// `.venv/bin/python scripts/gen_api_types.py` from the repository root; never edit it;
// `--check` fails when it no longer matches the gateway, tests/web/test_api_types.py).
// The API modules (src/api/panels.ts, src/features/*/api.ts) build their exported types
// from these helpers, so a backend change that renames, removes or retypes a field the app
// relies on fails `tsc` instead of the page at runtime.
import type { components, paths } from "./schema";

export type { paths };

/** The schema's models by name: `Schemas["PanelSummary"]`. */
export type Schemas = components["schemas"];

/** A JSON value, as the app handles it (the schema's JsonValue is `unknown`). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

type Method = "get" | "put" | "post" | "delete" | "patch";

/** The methods a path of the schema has (a path's other methods are `?: never`). */
export type MethodOf<P extends keyof paths> = {
  [M in Method]-?: undefined extends paths[P][M] ? never : M;
}[Method];

type Operation<P extends keyof paths, M extends MethodOf<P>> = NonNullable<paths[P][M]>;

type JsonBody<T> = T extends { content: { "application/json": infer B } } ? B : never;

/** The JSON body of the 200 (or 201) answer of `M path`: `ResponseOf<"/api/v1/panels", "get">`. */
export type ResponseOf<P extends keyof paths, M extends MethodOf<P>> =
  Operation<P, M> extends { responses: infer R }
    ? JsonBody<R[Extract<keyof R, 200 | 201>]>
    : never;

/** The JSON request body of `M path` (never when the route declares none). */
export type RequestOf<P extends keyof paths, M extends MethodOf<P>> =
  Operation<P, M> extends { requestBody?: infer B } ? JsonBody<NonNullable<B>> : never;

/** T with the schema's `unknown` (JsonValue, free dicts) read as Json, at any depth. */
export type Jsonify<T> = unknown extends T
  ? Json
  : T extends readonly (infer U)[]
    ? Jsonify<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonify<T[K]> }
      : T;

/** T with the fields of O narrowed: O's keys must be fields of T and each of O's types
 * must fit the generated one, so the narrowing breaks `tsc` when the schema moves away.
 * Used where the server always sends a field the schema marks optional (pydantic fields
 * with a default) or where the app knows more than the schema says. */
export type Narrow<T, O extends { [K in keyof O]: K extends keyof T ? T[K] : never }> = Omit<
  T,
  keyof O
> &
  O;

/** Compile-time check that a hand-written type still fits the generated one. */
export type Fits<Mine extends Generated, Generated> = Mine;

/** The answer type of one call, tied to its route: `api<Reply<"/api/v1/panels", "get",
 * PanelSummary[]>>(url)`. Mine (default: the generated type) must fit the route's answer. */
export type Reply<
  P extends keyof paths,
  M extends MethodOf<P>,
  Mine extends ResponseOf<P, M> = ResponseOf<P, M>,
> = Mine;
