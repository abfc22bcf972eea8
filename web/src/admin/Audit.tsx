import { useState } from "preact/hooks";
import { fullDate } from "../lib";
import { Empty, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { SortTh, usePage } from "./hooks";

export interface AuditEntry {
  id: number;
  at: string;
  principal: string;
  protocol: string;
  client_ip: string | null;
  method: string;
  object: string;
  target: string | null;
  domain: string | null;
  changes: Record<string, unknown> | null;
}

export function Audit(_: PageProps) {
  const [draft, setDraft] = useState({ principal: "", target: "", method: "", from: "", to: "" });
  const [filter, setFilter] = useState(draft);
  const query = {
    principal: filter.principal,
    target: filter.target,
    method: filter.method,
    from: filter.from ? new Date(filter.from).toISOString() : "",
    to: filter.to ? new Date(filter.to).toISOString() : "",
  };
  const list = usePage<AuditEntry>("/audit", query, 50, "-at");
  const set = (k: keyof typeof draft) => (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <section>
      <h1>Audit log</h1>
      <form class="card inline-form" onSubmit={(e) => { e.preventDefault(); setFilter(draft); }} aria-label="Filter">
        <label>Who<input value={draft.principal} onInput={set("principal")} placeholder="alice@example.org" /></label>
        <label>Object<input value={draft.target} onInput={set("target")} placeholder="bob@example.org" /></label>
        <label>Method<input value={draft.method} onInput={set("method")} placeholder="admin.users.*" /></label>
        <label>From<input type="datetime-local" value={draft.from} onInput={set("from")} /></label>
        <label>To<input type="datetime-local" value={draft.to} onInput={set("to")} /></label>
        <button type="submit" class="primary">Filter</button>
      </form>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} entries</h2>
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>No entries match.</Empty> : (
          <table>
            <thead><tr><SortTh field="at" list={list}>When</SortTh><th>Who</th><SortTh field="method" list={list}>What</SortTh><th>Changes</th></tr></thead>
            <tbody>
              {list.page?.items.map((e) => (
                <tr key={e.id} data-testid="audit-row">
                  <td class="small nowrap">{fullDate(e.at)}</td>
                  <td class="small">{e.principal}<div class="muted">{e.protocol}{e.client_ip ? ` · ${e.client_ip}` : ""}</div></td>
                  <td><code>{e.method}</code><div><strong>{e.target ?? e.object}</strong></div></td>
                  <td class="small changes">{e.changes ? Object.entries(e.changes).map(([k, v]) => (
                    <div key={k}><span class="muted">{k}:</span> {JSON.stringify(v)}</div>
                  )) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
