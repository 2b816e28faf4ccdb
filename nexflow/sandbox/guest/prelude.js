// Nexflow sandbox prelude: evaluated in every fresh QuickJS context before a
// handler or a binding batch runs. It receives the two native helpers from
// glue.c and returns the object the glue calls into. Everything the host reads
// back goes through JSON, so only plain data ever leaves the guest.
(function (hostCall, compile) {
  "use strict";
  const MAX_EFFECTS = 1000;
  const MAX_LOGS = 200;
  const MAX_LOG_CHARS = 2000;
  const RESERVED = new Set(
    ("break case catch class const continue debugger default delete do else enum export " +
      "extends false finally for function if import in instanceof let new null return " +
      "static super switch this throw true try typeof var void while with yield await " +
      "arguments eval undefined console").split(" "),
  );
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const effects = [];
  const logs = [];
  let pending = null;

  const plain = (value) => {
    const text = stringify(value);
    return text === undefined ? null : parse(text);
  };

  const describe = (err) => {
    if (err instanceof Error) {
      const stack = String(err.stack || "");
      const at = /handler:(\d+)/.exec(stack) || /handler:(\d+)/.exec(String(err.lineNumber));
      let line = at ? Number(at[1]) : null;
      if (line === null && typeof err.lineNumber === "number") line = err.lineNumber;
      return { name: err.name, message: String(err.message), line: line };
    }
    let message;
    try {
      message = typeof err === "string" ? err : stringify(err);
    } catch (_) {
      message = String(err);
    }
    return { name: "Error", message: "uncaught " + message, line: null };
  };

  const record = (effect) => {
    if (effects.length >= MAX_EFFECTS) throw new RangeError("too many effects (max " + MAX_EFFECTS + ")");
    effects.push(effect);
  };

  const emit = (event, payload) => {
    record({ kind: "emit", event: String(event), payload: plain(payload === undefined ? null : payload) });
  };

  const viewCall = (component, method, args) => {
    record({ kind: "view", component: component, method: method, args: args.map(plain) });
  };

  // $view.method(...) and $view.Component.method(...) both record a view effect.
  const view = new Proxy(Object.create(null), {
    get(_target, name) {
      if (typeof name !== "string") return undefined;
      const direct = (...args) => viewCall(null, name, args);
      return new Proxy(direct, {
        get(_fn, method) {
          if (typeof method !== "string") return undefined;
          return (...args) => viewCall(name, method, args);
        },
      });
    },
    set() {
      throw new TypeError("$view is read-only");
    },
  });

  const granted = (op, request) => {
    const reply = parse(hostCall(stringify(Object.assign({ op: op }, request))));
    if (!reply.ok) throw new Error(reply.error);
    return reply.value;
  };

  const log = (...parts) => {
    if (logs.length >= MAX_LOGS) return;
    const text = parts
      .map((p) => {
        if (typeof p === "string") return p;
        try {
          return stringify(p);
        } catch (_) {
          return String(p);
        }
      })
      .join(" ");
    logs.push(text.length > MAX_LOG_CHARS ? text.slice(0, MAX_LOG_CHARS) + "…" : text);
  };

  const freeze = (value) => {
    if (value !== null && typeof value === "object") {
      Object.freeze(value);
      for (const key of Object.keys(value)) freeze(value[key]);
    }
    return value;
  };

  globalThis.$emit = emit;
  globalThis.$view = view;
  globalThis.$fs = Object.freeze({ read: (path) => granted("fs.read", { path: String(path) }) });
  globalThis.$http = Object.freeze({ get: (url) => granted("http.get", { url: String(url) }) });
  globalThis.console = Object.freeze({ log: log, info: log, warn: log, error: log, debug: log });

  const startHandler = (input) => {
    const names = Object.keys(input.args).filter(
      (n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n) && !RESERVED.has(n),
    );
    const params = ["$state", "$args"].concat(names).join(", ");
    const fn = compile("(function (" + params + ") {" + input.source + "\n})", "handler");
    const state = input.state;
    globalThis.$state = state;
    globalThis.$args = input.args;
    const result = fn.apply(undefined, [state, input.args].concat(names.map((n) => input.args[n])));
    pending = { state: state, result: result };
  };

  const finishHandler = () =>
    stringify({
      ok: true,
      state: pending.state,
      result: pending.result === undefined ? null : pending.result,
      effects: effects,
      logs: logs,
    });

  const serialise = (value) => {
    const text = stringify(value);
    return '{"ok":true,"value":' + (text === undefined ? "null" : text) + "}";
  };
  const failure = (err) => stringify({ ok: false, error: describe(err) });

  // The common case: all bindings in one parse, as an array of arrow
  // functions. Results are serialised right away (the state is frozen, so
  // values cannot change later) and joined as text.
  const batchAtOnce = (exprs) => {
    const fns = compile("[" + exprs.map((e) => "() => (" + e + "\n)").join(",\n") + "]", "binding");
    if (!Array.isArray(fns) || fns.length !== exprs.length) return null;
    return fns.map((fn) => {
      try {
        return serialise(fn());
      } catch (err) {
        return failure(err);
      }
    });
  };

  // A syntax error (or a binding that escapes its parentheses) spoils the
  // shared parse; then each binding is compiled alone so errors stay its own.
  const batchOneByOne = (exprs) =>
    exprs.map((e) => {
      try {
        return serialise(compile("() => (" + e + "\n)", "binding")());
      } catch (err) {
        return failure(err);
      }
    });

  const evalBatch = (input) => {
    globalThis.$state = freeze(input.state);
    let results = null;
    try {
      results = batchAtOnce(input.exprs);
    } catch (_) {
      results = null;
    }
    pending = { results: results || batchOneByOne(input.exprs) };
  };

  return {
    start(mode, text) {
      try {
        const input = parse(text);
        if (mode === 0) startHandler(input);
        else evalBatch(input);
        return null;
      } catch (err) {
        return stringify({ ok: false, error: describe(err), logs: logs });
      }
    },
    finish(mode) {
      try {
        if (mode === 0) return finishHandler();
        return '{"ok":true,"results":[' + pending.results.join(",") + '],"logs":' + stringify(logs) + "}";
      } catch (err) {
        return stringify({ ok: false, error: describe(err), logs: logs });
      }
    },
  };
});
