import { useState } from "preact/hooks";
import { api } from "../api";
import { formatBytes } from "../lib";
import { Empty, Modal, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, useDomains, usePage, FilterInput, useFilter } from "./hooks";
import { UserImport } from "./UserImport";

export interface User {
  email: string;
  domain: string;
  display_name: string;
  quota_bytes: number;
  quota_bytes_used: number;
  enabled: boolean;
  enable_imap: boolean;
  enable_pop: boolean;
  enable_smtp: boolean;
  global_admin: boolean;
  forward_enabled: boolean;
  forward_destinations: string[];
  reply_enabled: boolean;
  reply_subject: string;
  reply_body: string;
  spam_threshold: number;
}

export function Users({ params, who }: PageProps) {
  const domains = useDomains();
  const [domain, setDomain] = useState(params.get("domain") ?? "");
  const filter = useFilter();
  const list = usePage<User>("/users", { domain, q: filter.q }, 25, "email");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [quota, setQuota] = useState("");
  const [editing, setEditing] = useState<User | null>(null);
  const [importing, setImporting] = useState(false);
  const create = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { email: email.trim(), password, display_name: displayName };
    if (quota.trim()) body.quota_bytes = Number(quota) * 1048576;
    if (await attempt(() => api.post("/users", body), `User ${email} created`)) {
      setEmail("");
      setPassword("");
      setDisplayName("");
      setQuota("");
      list.reload();
    }
  };
  return (
    <section>
      <h1>Users</h1>
      <form class="card inline-form" onSubmit={create} aria-label="New user">
        <label>Address<input type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required
          placeholder={`someone@${domain || domains[0]?.name || "example.org"}`} data-testid="user-create-email" /></label>
        <label>Password<input type="password" autocomplete="new-password" value={password} minLength={8}
          onInput={(e) => setPassword(e.currentTarget.value)} required data-testid="user-create-password" /></label>
        <label>Name<input value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} /></label>
        <label>Quota (MB)<input type="number" min="0" value={quota} onInput={(e) => setQuota(e.currentTarget.value)} placeholder="default" /></label>
        <button type="submit" class="primary" data-testid="user-create-submit">Create user</button>
      </form>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} users</h2>
          <FilterInput filter={filter} what="address or name" />
          <label class="filter">Domain
            <select value={domain} onChange={(e) => setDomain(e.currentTarget.value)} data-testid="user-filter-domain">
              <option value="">All domains</option>
              {domains.map((d) => <option key={d.name} value={d.name}>{d.name}</option>)}
            </select>
          </label>
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>No users here yet.</Empty> : (
          <table>
            <thead><tr><SortTh field="email" list={list}>Address</SortTh><SortTh field="quota_bytes_used" list={list}>Quota</SortTh><th>Services</th><th>Status</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.page?.items.map((u) => (
                <tr key={u.email} data-testid="user-row" data-email={u.email}>
                  <td><strong>{u.email}</strong>{u.display_name && <div class="muted small">{u.display_name}</div>}</td>
                  <td class="quota">
                    <meter min={0} max={u.quota_bytes || 1} value={u.quota_bytes_used} high={(u.quota_bytes || 1) * 0.8}
                      optimum={0} aria-label={`Quota used by ${u.email}`} />
                    <span class="small muted">{formatBytes(u.quota_bytes_used)} of {u.quota_bytes ? formatBytes(u.quota_bytes) : "∞"}</span>
                  </td>
                  <td class="small">
                    {[u.enable_imap && "IMAP", u.enable_pop && "POP", u.enable_smtp && "SMTP"].filter(Boolean).join(" · ") || "—"}
                    {u.forward_enabled && <span class="badge">forwards</span>}
                    {u.reply_enabled && <span class="badge">auto-reply</span>}
                  </td>
                  <td>
                    {u.enabled ? <span class="badge badge-ok">enabled</span> : <span class="badge badge-warn">disabled</span>}
                    {u.global_admin && <span class="badge badge-accent">admin</span>}
                  </td>
                  <td class="actions"><button type="button" onClick={() => setEditing(u)}>Edit</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {who.is_admin && (importing ? <UserImport onDone={list.reload} /> : (
        <p><button type="button" onClick={() => setImporting(true)} data-testid="user-import-open">Import users from CSV…</button></p>
      ))}
      {editing && <UserEdit user={editing} onClose={() => { setEditing(null); list.reload(); }} />}
    </section>
  );
}

function UserEdit(props: { user: User; onClose: () => void }) {
  const u = props.user;
  const path = `/users/${encodeURIComponent(u.email)}`;
  const [f, setF] = useState({
    display_name: u.display_name,
    quota: u.quota_bytes ? String(Math.round(u.quota_bytes / 1048576)) : "",
    enabled: u.enabled,
    enable_imap: u.enable_imap,
    enable_pop: u.enable_pop,
    enable_smtp: u.enable_smtp,
    forward_enabled: u.forward_enabled,
    forward_destinations: u.forward_destinations.join(", "),
    reply_enabled: u.reply_enabled,
    reply_subject: u.reply_subject,
    reply_body: u.reply_body,
    spam_threshold: String(u.spam_threshold),
    password: "",
  });
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setF({ ...f, [k]: t.type === "checkbox" ? t.checked : t.value });
  };
  const save = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = {
      display_name: f.display_name,
      enabled: f.enabled,
      enable_imap: f.enable_imap,
      enable_pop: f.enable_pop,
      enable_smtp: f.enable_smtp,
      forward_enabled: f.forward_enabled,
      forward_destinations: f.forward_destinations.split(/[,\s]+/).filter(Boolean),
      reply_enabled: f.reply_enabled,
      reply_subject: f.reply_subject,
      reply_body: f.reply_body,
      spam_threshold: Number(f.spam_threshold),
    };
    if (f.quota.trim()) body.quota_bytes = Number(f.quota) * 1048576;
    if (f.password) body.password = f.password;
    if (await attempt(() => api.patch(path, body), "Saved")) props.onClose();
  };
  const remove = async () => {
    if (confirm(`Delete ${u.email} and all of its mail?`) && (await attempt(() => api.del(path), "User deleted"))) props.onClose();
  };
  const resetTotp = async () => {
    if (confirm(`Turn two-step sign-in off for ${u.email}?`)) await attempt(() => api.del(`${path}/totp`), "Two-step sign-in reset");
  };
  return (
    <Modal title={u.email} onClose={props.onClose}>
      <form class="form-grid" onSubmit={save}>
        <label>Name<input value={f.display_name} onInput={set("display_name")} /></label>
        <label>Quota (MB)<input type="number" min="0" value={f.quota} onInput={set("quota")} /></label>
        <label>New password<input type="password" autocomplete="new-password" value={f.password} onInput={set("password")} placeholder="unchanged" minLength={8}
          data-testid="user-edit-password" /></label>
        <label>Spam threshold<input type="number" step="0.5" value={f.spam_threshold} onInput={set("spam_threshold")} /></label>
        <fieldset class="checks">
          <legend>Enabled</legend>
          <label class="check"><input type="checkbox" checked={f.enabled} onChange={set("enabled")} />Account</label>
          <label class="check"><input type="checkbox" checked={f.enable_imap} onChange={set("enable_imap")} />IMAP</label>
          <label class="check"><input type="checkbox" checked={f.enable_pop} onChange={set("enable_pop")} />POP3</label>
          <label class="check"><input type="checkbox" checked={f.enable_smtp} onChange={set("enable_smtp")} />SMTP</label>
        </fieldset>
        <fieldset class="wide">
          <legend><label class="check"><input type="checkbox" checked={f.forward_enabled} onChange={set("forward_enabled")} />Forwarding</label></legend>
          <label>Forward to<input value={f.forward_destinations} onInput={set("forward_destinations")} placeholder="a@elsewhere.example, b@…" /></label>
        </fieldset>
        <fieldset class="wide">
          <legend><label class="check"><input type="checkbox" checked={f.reply_enabled} onChange={set("reply_enabled")} />Auto-reply</label></legend>
          <label>Subject<input value={f.reply_subject} onInput={set("reply_subject")} /></label>
          <label>Message<textarea rows={3} value={f.reply_body} onInput={set("reply_body")} /></label>
        </fieldset>
        <div class="form-actions">
          <button type="submit" class="primary" data-testid="user-edit-save">Save</button>
          <button type="button" class="danger" onClick={remove}>Delete user</button>
        </div>
      </form>
      <Identities email={u.email} />
      <h3>Two-step sign-in</h3>
      <p class="muted small">If {u.email} lost their authenticator app and recovery codes, take the second factor away:
        the password alone signs in from the next login, and they can set it up again.</p>
      <button type="button" class="danger" onClick={resetTotp} data-testid="user-reset-totp">Reset two-step sign-in</button>
    </Modal>
  );
}

interface Identity {
  user: string;
  address: string;
  display_name: string;
  created_at: string;
}

/** The addresses a user may send as (besides their own): list, add, remove. */
function Identities(props: { email: string }) {
  const path = `/users/${encodeURIComponent(props.email)}/identities`;
  const list = usePage<Identity>(path, {}, 100);
  const [address, setAddress] = useState("");
  const [name, setName] = useState("");
  const add = async (e: Event) => {
    e.preventDefault();
    if (await attempt(() => api.post(path, { address: address.trim(), display_name: name }), `${props.email} may send as ${address.trim()}`)) {
      setAddress("");
      setName("");
      list.reload();
    }
  };
  const remove = async (i: Identity) => {
    if (await attempt(() => api.del(`${path}/${encodeURIComponent(i.address)}`), `Removed ${i.address}`)) list.reload();
  };
  return (
    <section data-testid="identities">
      <h3>Send as</h3>
      <table>
        <tbody>
          {list.page?.items.map((i) => (
            <tr key={i.address} data-testid="identity-row" data-address={i.address}>
              <td><strong>{i.address}</strong>{i.display_name && <div class="muted small">{i.display_name}</div>}</td>
              <td class="actions"><button type="button" class="danger" onClick={() => remove(i)}>Remove</button></td>
            </tr>
          ))}
          {list.page?.items.length === 0 && <tr><td class="muted">Only their own address.</td></tr>}
        </tbody>
      </table>
      <form class="inline-form" onSubmit={add} aria-label="New send-as address">
        <label>Address<input type="email" value={address} required onInput={(e) => setAddress(e.currentTarget.value)}
          placeholder="support@example.org" data-testid="identity-address" /></label>
        <label>Name<input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="Support" /></label>
        <button type="submit" data-testid="identity-add">Add</button>
      </form>
    </section>
  );
}
