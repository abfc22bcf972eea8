import { useEffect, useState } from "preact/hooks";
import { api, type Page } from "../api";
import { formatBytes, fullDate, shortDate } from "../lib";
import { copyText, Empty, errorToast, Modal, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, usePage, type Domain, FilterInput, useFilter } from "./hooks";

function numberOrNull(v: string): number | null {
  return v.trim() === "" ? null : Number(v);
}

export function Domains({ who, params }: PageProps) {
  const filter = useFilter();
  const list = usePage<Domain>("/domains", { q: filter.q }, 25, "name");
  const [name, setName] = useState("");
  const [comment, setComment] = useState("");
  const [open, setOpen] = useState<string | null>(params.get("open"));
  const create = async (e: Event) => {
    e.preventDefault();
    const ok = await attempt(() => api.post("/domains", { name: name.trim(), comment }), `Domain ${name} created`);
    if (ok) {
      setName("");
      setComment("");
      list.reload();
    }
  };
  return (
    <section>
      <h1>Domains</h1>
      {who.is_admin && (
        <form class="card inline-form" onSubmit={create} aria-label="New domain">
          <label>
            Name
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="example.org" required
              data-testid="domain-create-name" />
          </label>
          <label>
            Comment
            <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" data-testid="domain-create-submit">Create domain</button>
        </form>
      )}
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} domains</h2>
          <FilterInput filter={filter} what="name" />
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? (
          <Empty>No domain yet.</Empty>
        ) : (
          <table>
            <thead>
              <tr><SortTh field="name" list={list}>Name</SortTh><th>Users</th><th>Aliases</th><th>Quota</th><th>Sign-up</th><th>DKIM</th><SortTh field="created_at" list={list}>Created</SortTh><th><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              {list.page?.items.map((d) => (
                <tr key={d.name} data-testid="domain-row" data-domain={d.name}>
                  <td><strong>{d.name}</strong>{d.comment && <div class="muted small">{d.comment}</div>}</td>
                  <td>{d.max_users ?? "∞"}</td>
                  <td>{d.max_aliases ?? "∞"}</td>
                  <td>{d.max_quota_bytes === null ? "∞" : formatBytes(d.max_quota_bytes)}</td>
                  <td>{d.signup_enabled ? <span class="badge badge-ok">open</span> : <span class="badge">closed</span>}</td>
                  <td>{d.dkim_selector ? <span class="badge badge-ok">{d.dkim_selector}</span> : <span class="badge badge-warn">none</span>}</td>
                  <td class="small">{shortDate(d.created_at)}</td>
                  <td class="actions">
                    <button type="button" onClick={() => setOpen(d.name)}>Manage</button>
                    <a class="button ghost" href={`#/users?domain=${encodeURIComponent(d.name)}`}>Users</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {open && (
        <DomainDetail name={open} admin={who.is_admin} onClose={() => { setOpen(null); list.reload(); }} />
      )}
    </section>
  );
}

interface Dns { name: string; type: string; value: string; ttl: number; purpose: string }

export interface DnsCheck { name: string; type: string; expected: string; found: string[]; status: "ok" | "different" | "missing" | "error"; detail: string }

const STATUS_LABEL = { ok: "published", different: "different", missing: "missing", error: "no answer" } as const;
const STATUS_CLASS = { ok: "badge-ok", different: "badge-warn", missing: "badge-warn", error: "badge-warn" } as const;

/** The check of one record to publish (same name, type and value). */
export function findCheck(checks: DnsCheck[], r: { name: string; type: string; value: string }): DnsCheck | undefined {
  return checks.find((c) => c.name === r.name && c.type === r.type && c.expected === r.value);
}

/** "3 of 7 published, 1 different, 3 missing". */
export function checkSummary(checks: DnsCheck[]): string {
  const n = (s: DnsCheck["status"]) => checks.filter((c) => c.status === s).length;
  const parts = [`${n("ok")} of ${checks.length} published`];
  if (n("different")) parts.push(`${n("different")} different`);
  if (n("missing")) parts.push(`${n("missing")} missing`);
  if (n("error")) parts.push(`${n("error")} without an answer`);
  return parts.join(", ");
}
interface Alternative { name: string; comment: string }
interface Manager { email: string; created_at: string }
interface Dkim { selector: string; bits: number; record_name: string; record_value: string }

function DomainDetail(props: { name: string; admin: boolean; onClose: () => void }) {
  const path = `/domains/${encodeURIComponent(props.name)}`;
  const [domain, setDomain] = useState<Domain | null>(null);
  const [dns, setDns] = useState<Dns[]>([]);
  const [checks, setChecks] = useState<DnsCheck[] | null>(null);
  const [checking, setChecking] = useState(false);
  const runCheck = async () => {
    setChecking(true);
    try {
      setChecks(await api.get<DnsCheck[]>(`${path}/dns/check`));
    } catch (e) {
      errorToast(e);
    } finally {
      setChecking(false);
    }
  };
  const [alts, setAlts] = useState<Alternative[]>([]);
  const [managers, setManagers] = useState<Manager[]>([]);
  const [dkim, setDkim] = useState<Dkim | null>(null);
  const [form, setForm] = useState({ comment: "", max_users: "", max_aliases: "", max_quota: "", signup: false });
  const [newAlt, setNewAlt] = useState("");
  const [newManager, setNewManager] = useState("");
  const load = async () => {
    const d = await api.get<Domain>(path);
    setDomain(d);
    setForm({
      comment: d.comment,
      max_users: d.max_users?.toString() ?? "",
      max_aliases: d.max_aliases?.toString() ?? "",
      max_quota: d.max_quota_bytes === null ? "" : String(Math.round(d.max_quota_bytes / 1048576)),
      signup: d.signup_enabled,
    });
    api.get<Dns[]>(`${path}/dns`).then(setDns, () => setDns([]));
    api.get<Page<Alternative>>(`${path}/alternatives`).then((p) => setAlts(p.items), () => setAlts([]));
    api.get<Page<Manager>>(`${path}/managers`).then((p) => setManagers(p.items), () => setManagers([]));
    if (d.dkim_selector) api.get<Dkim>(`${path}/dkim`).then(setDkim, () => setDkim(null));
    else setDkim(null);
  };
  useEffect(() => void load().catch(() => props.onClose()), [props.name]);
  const save = async (e: Event) => {
    e.preventDefault();
    const quota = numberOrNull(form.max_quota);
    await attempt(
      () => api.patch(path, {
        comment: form.comment,
        max_users: numberOrNull(form.max_users),
        max_aliases: numberOrNull(form.max_aliases),
        max_quota_bytes: quota === null ? null : quota * 1048576,
        signup_enabled: form.signup,
      }),
      "Saved",
    ) && load();
  };
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setForm({ ...form, [k]: t.type === "checkbox" ? t.checked : t.value });
  };
  return (
    <Modal title={props.name} onClose={props.onClose}>
      {!domain ? <p>Loading…</p> : (
        <div class="detail">
          <form class="form-grid" onSubmit={save}>
            <label>Comment<input value={form.comment} onInput={set("comment")} disabled={!props.admin} /></label>
            <label>Most users<input type="number" min="0" value={form.max_users} onInput={set("max_users")} placeholder="no limit" disabled={!props.admin} /></label>
            <label>Most aliases<input type="number" min="0" value={form.max_aliases} onInput={set("max_aliases")} placeholder="no limit" disabled={!props.admin} /></label>
            <label>Quota in all (MB)<input type="number" min="0" value={form.max_quota} onInput={set("max_quota")} placeholder="no limit" disabled={!props.admin} /></label>
            <label class="check"><input type="checkbox" checked={form.signup} onChange={set("signup")} disabled={!props.admin} />Sign-up open</label>
            {props.admin && <div class="form-actions"><button type="submit" class="primary">Save limits</button>
              <button type="button" class="danger" onClick={async () => {
                if (confirm(`Delete ${props.name} with all its users and mail?`) && (await attempt(() => api.del(path), "Domain deleted"))) props.onClose();
              }}>Delete domain</button></div>}
          </form>

          <h3>Alternative names</h3>
          <ul class="chips">
            {alts.map((a) => (
              <li key={a.name} class="chip">{a.name}
                {props.admin && <button type="button" class="icon" aria-label={`Remove ${a.name}`} onClick={async () => (await attempt(() => api.del(`${path}/alternatives/${a.name}`))) && load()}>×</button>}
              </li>
            ))}
            {alts.length === 0 && <li class="muted">None.</li>}
          </ul>
          {props.admin && <form class="inline-form" onSubmit={async (e) => { e.preventDefault(); if (await attempt(() => api.post(`${path}/alternatives`, { name: newAlt.trim() }))) { setNewAlt(""); load(); } }}>
            <input value={newAlt} onInput={(e) => setNewAlt(e.currentTarget.value)} placeholder="example.net" aria-label="Alternative name" required />
            <button type="submit">Add</button>
          </form>}

          <h3>Managers</h3>
          <ul class="chips">
            {managers.map((m) => (
              <li key={m.email} class="chip">{m.email}
                {props.admin && <button type="button" class="icon" aria-label={`Remove ${m.email}`} onClick={async () => (await attempt(() => api.del(`${path}/managers/${m.email}`))) && load()}>×</button>}
              </li>
            ))}
            {managers.length === 0 && <li class="muted">None.</li>}
          </ul>
          {props.admin && <form class="inline-form" onSubmit={async (e) => { e.preventDefault(); if (await attempt(() => api.post(`${path}/managers`, { email: newManager.trim() }))) { setNewManager(""); load(); } }}>
            <input type="email" value={newManager} onInput={(e) => setNewManager(e.currentTarget.value)} placeholder="someone@example.org" aria-label="Manager address" required />
            <button type="submit">Add manager</button>
          </form>}

          <h3>DKIM</h3>
          {dkim ? <p>Selector <code>{dkim.selector}</code>, {dkim.bits} bits.</p> : <p class="muted">No key: outgoing mail is not signed.</p>}
          <button type="button" onClick={async () => (await attempt(() => api.post(`${path}/dkim`, {}), "New DKIM key generated")) && load()}>
            {dkim ? "Generate a new key" : "Generate a key"}
          </button>

          <h3>DNS records to publish</h3>
          <p>
            <button type="button" onClick={runCheck} disabled={checking} data-testid="dns-check">
              {checking ? "Asking DNS…" : "Check what DNS answers"}
            </button>
            {checks && <span class="small" data-testid="dns-check-summary"> {checkSummary(checks)}</span>}
          </p>
          <table class="dns">
            <thead><tr><th>Name</th><th>Type</th><th>Value</th>{checks && <th>DNS answers</th>}<th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {dns.map((r, i) => {
                const c = checks ? findCheck(checks, r) : undefined;
                return (
                  <tr key={i} title={r.purpose} data-testid="dns-row" data-name={r.name} data-type={r.type}>
                    <td><code>{r.name}</code></td>
                    <td><span class="badge">{r.type}</span></td>
                    <td class="dns-value"><code>{r.value}</code><div class="muted small">{r.purpose}</div></td>
                    {checks && (
                      <td class="dns-value" data-testid="dns-status" data-status={c?.status ?? ""}>
                        {c && <span class={`badge ${STATUS_CLASS[c.status]}`}>{STATUS_LABEL[c.status]}</span>}
                        {c?.found.map((f) => <div key={f}><code>{f}</code></div>)}
                        {c?.detail && <div class="muted small">{c.detail}</div>}
                      </td>
                    )}
                    <td><button type="button" class="ghost" onClick={() => copyText(r.value)}>Copy</button></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p class="muted small">Created {fullDate(domain.created_at)}.</p>
        </div>
      )}
    </Modal>
  );
}
