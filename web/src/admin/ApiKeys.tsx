import { useState } from "preact/hooks";
import { api } from "../api";
import { fullDate } from "../lib";
import { copyText, Empty, Modal, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, usePage, FilterInput, useFilter } from "./hooks";

interface ApiKey {
  id: string;
  name: string;
  owner: string | null;
  admin: boolean;
  scopes: string[] | null;
  allowed_networks: string[] | null;
  expires_at: string | null;
  created_at: string;
  last_used_at: string | null;
}

const list_ = (s: string) => s.split(/[,\s]+/).filter(Boolean);

export function ApiKeys({ who }: PageProps) {
  const filter = useFilter();
  const list = usePage<ApiKey>("/apikeys", { q: filter.q }, 25, "created_at");
  const [f, setF] = useState({ name: "", owner: "", admin: false, scopes: "", networks: "", expires: "" });
  const [secret, setSecret] = useState<{ name: string; key: string } | null>(null);
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setF({ ...f, [k]: t.type === "checkbox" ? t.checked : t.value });
  };
  const create = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = { name: f.name.trim() };
    if (f.owner.trim()) body.owner = f.owner.trim();
    if (f.admin) body.admin = true;
    if (f.scopes.trim()) body.scopes = list_(f.scopes);
    if (f.networks.trim()) body.allowed_networks = list_(f.networks);
    if (f.expires) body.expires_at = new Date(f.expires).toISOString();
    try {
      const made = await api.post<ApiKey & { key: string }>("/apikeys", body);
      setSecret({ name: made.name, key: made.key });
      setF({ name: "", owner: "", admin: false, scopes: "", networks: "", expires: "" });
      list.reload();
    } catch (err) {
      await attempt(() => Promise.reject(err));
    }
  };
  return (
    <section>
      <h1>API keys</h1>
      <form class="card form-grid" onSubmit={create} aria-label="New API key">
        <label>Name<input value={f.name} onInput={set("name")} required placeholder="backup" data-testid="apikey-create-name" /></label>
        <label>Acts as (user)<input type="email" value={f.owner} onInput={set("owner")} placeholder={who.email ?? "nobody: an admin key"} /></label>
        <label>Scopes<input value={f.scopes} onInput={set("scopes")} placeholder="admin.users.*, mail.*" /></label>
        <label>Networks<input value={f.networks} onInput={set("networks")} placeholder="192.0.2.0/24" /></label>
        <label>Expires<input type="date" value={f.expires} onInput={set("expires")} /></label>
        {who.is_admin && <label class="check"><input type="checkbox" checked={f.admin} onChange={set("admin")} />Administrator key</label>}
        <div class="form-actions"><button type="submit" class="primary" data-testid="apikey-create-submit">Create key</button></div>
      </form>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} keys</h2>
          <FilterInput filter={filter} what="name or id" />
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>No keys.</Empty> : (
          <table>
            <thead><tr><SortTh field="name" list={list}>Name</SortTh><th>Acts as</th><th>Scopes</th><SortTh field="expires_at" list={list}>Expires</SortTh><SortTh field="last_used_at" list={list}>Last used</SortTh><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.page?.items.map((k) => (
                <tr key={k.id} data-testid="apikey-row">
                  <td><strong>{k.name}</strong><div class="muted small"><code>{k.id}</code></div></td>
                  <td>{k.admin ? <span class="badge badge-accent">admin</span> : k.owner}</td>
                  <td class="small">{k.scopes?.join(", ") ?? "every method"}{k.allowed_networks && <div class="muted">from {k.allowed_networks.join(", ")}</div>}</td>
                  <td class="small">{k.expires_at ? fullDate(k.expires_at) : "never"}</td>
                  <td class="small">{k.last_used_at ? fullDate(k.last_used_at) : "never"}</td>
                  <td class="actions"><button type="button" class="danger" onClick={async () => {
                    if (confirm(`Delete the key ${k.name}? Clients using it stop working.`) && (await attempt(() => api.del(`/apikeys/${k.id}`), "Key deleted"))) list.reload();
                  }}>Delete</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {secret && (
        <Modal title={`Key ${secret.name}`} onClose={() => setSecret(null)}>
          <p>This is the only time the key is shown. Store it now.</p>
          <div class="secret"><code data-testid="apikey-secret">{secret.key}</code></div>
          <div class="form-actions">
            <button type="button" class="primary" onClick={() => copyText(secret.key)}>Copy</button>
            <button type="button" onClick={() => setSecret(null)}>Done</button>
          </div>
        </Modal>
      )}
    </section>
  );
}
