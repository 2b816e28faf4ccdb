// A unified diff (git's, as GET /api/v1/patches/{id} "diff" holds it) as side-by-side
// rows per file: a removed line on the left, the added line that replaces it on the
// right, context on both sides.

export interface Side {
  no: number;
  text: string;
  kind: "context" | "del" | "add";
}

export interface Row {
  left: Side | null;
  right: Side | null;
}

export interface Hunk {
  header: string;
  rows: Row[];
}

export interface FileDiff {
  path: string;
  status: "added" | "deleted" | "modified";
  hunks: Hunk[];
}

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/;

export function parseUnified(text: string): FileDiff[] {
  const files: FileDiff[] = [];
  let file: FileDiff | null = null;
  let hunk: Hunk | null = null;
  let left = 0;
  let right = 0;
  let dels: Side[] = [];
  let adds: Side[] = [];

  const flush = () => {
    if (!hunk) return;
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i++) hunk.rows.push({ left: dels[i] ?? null, right: adds[i] ?? null });
    dels = [];
    adds = [];
  };

  for (const line of text.split("\n")) {
    if (line.startsWith("diff --git ")) {
      flush();
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      file = { path: m ? m[2] : line.slice(11), status: "modified", hunks: [] };
      files.push(file);
      hunk = null;
      continue;
    }
    if (!file) {
      if (line.startsWith("--- ") || line.startsWith("@@")) {
        file = { path: "", status: "modified", hunks: [] };
        files.push(file);
      } else continue;
    }
    if (line.startsWith("new file")) file.status = "added";
    else if (line.startsWith("deleted file")) file.status = "deleted";
    else if (line.startsWith("--- ") && !hunk) {
      const p = line.slice(4).replace(/^a\//, "");
      if (!file.path && p !== "/dev/null") file.path = p;
    } else if (line.startsWith("+++ ") && !hunk) {
      const p = line.slice(4).replace(/^b\//, "");
      if (p !== "/dev/null") file.path = p;
    } else if (line.startsWith("@@")) {
      flush();
      const m = HUNK.exec(line);
      left = m ? Number(m[1]) : 1;
      right = m ? Number(m[2]) : 1;
      hunk = { header: line, rows: [] };
      file.hunks.push(hunk);
    } else if (hunk) {
      if (line.startsWith("-")) dels.push({ no: left++, text: line.slice(1), kind: "del" });
      else if (line.startsWith("+")) adds.push({ no: right++, text: line.slice(1), kind: "add" });
      else if (line.startsWith("\\")) continue; // "\ No newline at end of file"
      else if (line.startsWith(" ") || line === "") {
        if (line === "" && dels.length === 0 && adds.length === 0) {
          // a blank context line at the very end of the text: ignore it
          continue;
        }
        flush();
        const body = line.slice(1);
        hunk.rows.push({
          left: { no: left++, text: body, kind: "context" },
          right: { no: right++, text: body, kind: "context" },
        });
      }
    }
  }
  flush();
  return files.filter((f) => f.path || f.hunks.length);
}
