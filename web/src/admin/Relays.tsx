import { useState } from "preact/hooks";
import { api } from "../api";
import { Empty, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, usePage, FilterInput, useFilter } from "./hooks";

interface Relay {
  name: string;
  smarthost: string;
  comment: string;
}

/** Relayed domains: mail for them is accepted and passed on (to a smarthost, or by MX). */
export function Relays(_: PageProps) {
  const filter = useFilter();
  const list = usePage<Relay>("/relays", { q: filter.q }, 25, "name");
  const [f, setF] = useState({ name: "", smarthost: "", comment: "" });
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const create = async (e: Event) => {
    e.preventDefault();
    if (await attempt(() => api.post("/relays", { name: f.name.trim(), smarthost: f.smarthost.trim(), comment: f.comment }), `Relay ${f.name} created`)) {
      setF({ name: "", smarthost: "", comment: "" });
      list.reload();
    }
  };
  return (
    <section>
      <h1>Relays</h1>
      <form class="card inline-form" onSubmit={create} aria-label="New relay">
        <label>Domain<input value={f.name} onInput={set("name")} required placeholder="partner.example" /></label>
        <label>Smarthost<input value={f.smarthost} onInput={set("smarthost")} placeholder="empty: by MX; or mx.partner.example:25" /></label>
        <label>Comment<input value={f.comment} onInput={set("comment")} /></label>
        <button type="submit" class="primary">Add relay</button>
      </form>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} relays</h2>
          <FilterInput filter={filter} what="domain or smarthost" />
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>No relayed domains.</Empty> : (
          <table>
            <thead><tr><SortTh field="name" list={list}>Domain</SortTh><SortTh field="smarthost" list={list}>Goes to</SortTh><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.page?.items.map((r) => (
                <tr key={r.name} data-testid="relay-row">
                  <td><strong>{r.name}</strong>{r.comment && <div class="muted small">{r.comment}</div>}</td>
                  <td>{r.smarthost ? <code>{r.smarthost}</code> : <span class="muted">its MX</span>}</td>
                  <td class="actions"><button type="button" class="danger" onClick={async () => {
                    if (confirm(`Stop relaying ${r.name}?`) && (await attempt(() => api.del(`/relays/${encodeURIComponent(r.name)}`), "Relay deleted"))) list.reload();
                  }}>Delete</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
