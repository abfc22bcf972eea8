import { useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { errorToast, toast } from "../ui";

// CSV import of users through the configuration import (POST /config {document: {users}}):
// a dry run first, which answers the diff (create / update with the changed fields; a row it
// does not mention is unchanged) or every row's errors at once; then the real run in chunks,
// each one transaction, with a progress bar.

export interface CsvUser {
  line: number;
  user: Record<string, unknown>;
}

export interface ParsedCsv {
  rows: CsvUser[];
  errors: { line: number; message: string }[];
}

const BOOLEAN = new Set(["enabled", "enable_imap", "enable_pop", "enable_smtp", "forward_enabled", "reply_enabled", "global_admin"]);
const TEXT = new Set(["email", "password", "display_name", "reply_subject", "reply_body"]);
export const CSV_COLUMNS = ["email", "password", "display_name", "quota_mb", ...BOOLEAN, "forward_destinations", "reply_subject", "reply_body"];

/** RFC 4180 records: fields separated by commas, "quoted" fields may hold commas, quotes ("") and line breaks. */
export function csvRecords(text: string): { line: number; fields: string[] }[] {
  const out: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      fields.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      fields.push(field);
      if (fields.some((f) => f.trim() !== "")) out.push({ line: start, fields });
      fields = [];
      field = "";
      line++;
      start = line;
    } else field += c;
  }
  fields.push(field);
  if (fields.some((f) => f.trim() !== "")) out.push({ line: start, fields });
  return out;
}

function parseBoolean(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "y"].includes(v)) return true;
  if (["0", "false", "no", "n"].includes(v)) return false;
  return null;
}

/** Users from CSV text with a header row naming the columns (email required; see CSV_COLUMNS).
 * An empty cell leaves the field out: a user that exists keeps its stored value. */
export function parseUsersCsv(text: string): ParsedCsv {
  const records = csvRecords(text.replace(/^\uFEFF/, ""));
  const errors: ParsedCsv["errors"] = [];
  if (records.length === 0) return { rows: [], errors: [{ line: 1, message: "the file is empty" }] };
  const header = records[0].fields.map((h) => h.trim().toLowerCase());
  const unknown = header.filter((h) => !CSV_COLUMNS.includes(h));
  if (unknown.length) errors.push({ line: records[0].line, message: `unknown column(s): ${unknown.join(", ")}` });
  if (!header.includes("email")) errors.push({ line: records[0].line, message: "no email column" });
  if (errors.length) return { rows: [], errors };
  const rows: CsvUser[] = [];
  for (const { line, fields } of records.slice(1)) {
    if (fields.length > header.length) {
      errors.push({ line, message: `${fields.length} fields, the header has ${header.length}` });
      continue;
    }
    const user: Record<string, unknown> = {};
    let bad = false;
    header.forEach((name, i) => {
      const raw = fields[i] ?? "";
      const value = TEXT.has(name) && name !== "email" ? raw : raw.trim();
      if (value === "") return;
      if (TEXT.has(name)) user[name] = value;
      else if (BOOLEAN.has(name)) {
        const b = parseBoolean(value);
        if (b === null) {
          errors.push({ line, message: `${name}: "${value}" is not yes or no` });
          bad = true;
        } else user[name] = b;
      } else if (name === "quota_mb") {
        const n = Number(value);
        if (!Number.isFinite(n) || n < 0) {
          errors.push({ line, message: `quota_mb: "${value}" is not a number of megabytes` });
          bad = true;
        } else user.quota_bytes = Math.round(n * 1048576);
      } else if (name === "forward_destinations") {
        user.forward_destinations = value.split(/[;\s]+/).filter(Boolean);
      }
    });
    if (!user.email) {
      errors.push({ line, message: "no email" });
      bad = true;
    }
    if (!bad) rows.push({ line, user });
  }
  return { rows, errors };
}

export interface FieldChange { old: unknown; new: unknown }
export interface Change { action: "create" | "update" | "delete"; kind: string; key: string; changes: Record<string, FieldChange> }
export interface ImportResult { dry_run: boolean; changes: Change[]; created: number; updated: number; deleted: number }

export interface PlanRow {
  line: number;
  email: string;
  action: "create" | "update" | "skip" | "error";
  details: string[];
}

/** One line per CSV row: what the dry run says about it, or the errors found in it. */
export function planRows(rows: CsvUser[], result: ImportResult | null, problem: ApiError | null): PlanRow[] {
  const errors = new Map<number, string[]>();
  for (const e of problem?.problem.errors ?? []) {
    const loc = (e as { loc?: string; field?: string }).loc ?? e.field ?? "";
    const m = /^document\.users\.(\d+)(?:\.(.+))?$/.exec(loc);
    if (!m) continue;
    const i = Number(m[1]);
    errors.set(i, [...(errors.get(i) ?? []), m[2] ? `${m[2]}: ${e.message}` : e.message]);
  }
  const byKey = new Map((result?.changes ?? []).filter((c) => c.kind === "user").map((c) => [c.key.toLowerCase(), c]));
  return rows.map((r, i) => {
    const email = String(r.user.email);
    const errs = errors.get(i);
    if (errs) return { line: r.line, email, action: "error", details: errs };
    const c = byKey.get(email.toLowerCase());
    if (!c) return { line: r.line, email, action: "skip", details: [problem ? "not checked: fix the errors first" : "no change"] };
    const details = Object.entries(c.changes).map(([k, v]) =>
      c.action === "create" ? `${k}: ${show(v.new)}` : `${k}: ${show(v.old)} → ${show(v.new)}`);
    return { line: r.line, email, action: c.action === "create" ? "create" : "update", details };
  });
}

function show(v: unknown): string {
  return v === null || v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v);
}

/** Rows in chunks of `size` for the real run (each chunk is one import, one transaction). */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const CHUNK = 20;

export function UserImport(props: { onDone: () => void }) {
  const [parsed, setParsed] = useState<ParsedCsv | null>(null);
  const [plan, setPlan] = useState<PlanRow[] | null>(null);
  const [checking, setChecking] = useState(false);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [summary, setSummary] = useState("");
  const load = async (file: File | undefined) => {
    setPlan(null);
    setSummary("");
    setProgress(null);
    setParsed(file ? parseUsersCsv(await file.text()) : null);
  };
  const users = () => (parsed?.rows ?? []).map((r) => r.user);
  const dryRun = async () => {
    if (!parsed) return;
    setChecking(true);
    try {
      const result = await api.post<ImportResult>("/config", { document: { users: users() }, dry_run: true });
      setPlan(planRows(parsed.rows, result, null));
    } catch (e) {
      if (e instanceof ApiError && e.code === "invalid_params") setPlan(planRows(parsed.rows, null, e));
      else errorToast(e);
    } finally {
      setChecking(false);
    }
  };
  const run = async () => {
    if (!parsed || !plan) return;
    const todo = parsed.rows.filter((_, i) => plan[i].action === "create" || plan[i].action === "update").map((r) => r.user);
    const parts = chunks(todo, CHUNK);
    let created = 0;
    let updated = 0;
    setProgress({ done: 0, total: todo.length });
    for (const part of parts) {
      try {
        const r = await api.post<ImportResult>("/config", { document: { users: part } });
        created += r.created;
        updated += r.updated;
        setProgress((p) => p && { ...p, done: p.done + part.length });
      } catch (e) {
        errorToast(e);
        break;
      }
    }
    const text = `Imported: ${created} created, ${updated} updated`;
    setSummary(text);
    toast(text);
    props.onDone();
  };
  const counts = plan ? (["create", "update", "skip", "error"] as const).map((a) => [a, plan.filter((p) => p.action === a).length] as const) : [];
  const hasErrors = (parsed?.errors.length ?? 0) > 0 || plan?.some((p) => p.action === "error");
  return (
    <div class="card" data-testid="user-import">
      <h2>Import users from CSV</h2>
      <p class="muted small">
        A header row, then one user a line. Columns: <code>{CSV_COLUMNS.join(", ")}</code> (email required; a new user
        needs a password; an empty cell keeps the stored value; <code>forward_destinations</code> separated by ;).
      </p>
      <div class="inline-form">
        <label>CSV file<input type="file" accept=".csv,text/csv" onChange={(e) => load(e.currentTarget.files?.[0])} data-testid="user-import-file" /></label>
        <button type="button" onClick={dryRun} disabled={!parsed || parsed.rows.length === 0 || checking} data-testid="user-import-check">
          {checking ? "Checking…" : "Check (dry run)"}
        </button>
        <button type="button" class="primary" onClick={run} disabled={!plan || hasErrors || progress !== null || !plan.some((p) => p.action === "create" || p.action === "update")}
          data-testid="user-import-run">Import</button>
      </div>
      {parsed && parsed.errors.length > 0 && (
        <ul class="form-error" data-testid="user-import-errors">
          {parsed.errors.map((e) => <li key={`${e.line}-${e.message}`}>Line {e.line}: {e.message}</li>)}
        </ul>
      )}
      {plan && (
        <>
          <p data-testid="user-import-summary">{counts.map(([a, n]) => `${n} ${a}`).join(", ")}</p>
          <table>
            <thead><tr><th>Line</th><th>Address</th><th>Action</th><th>Changes</th></tr></thead>
            <tbody>
              {plan.map((p) => (
                <tr key={p.line} data-testid="user-import-row" data-action={p.action} data-email={p.email}>
                  <td>{p.line}</td>
                  <td>{p.email}</td>
                  <td><span class={`badge ${p.action === "error" ? "badge-warn" : p.action === "create" ? "badge-ok" : ""}`}>{p.action}</span></td>
                  <td class="small">{p.details.join("; ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {progress && (
        <p>
          <progress max={Math.max(1, progress.total)} value={progress.done} data-testid="user-import-progress"
            aria-label="Import progress" /> {progress.done} of {progress.total}
        </p>
      )}
      {summary && <p data-testid="user-import-done">{summary}</p>}
    </div>
  );
}
