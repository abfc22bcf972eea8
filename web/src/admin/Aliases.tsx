import { useState } from "preact/hooks";
import { api } from "../api";
import { Empty, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, useDomains, usePage, FilterInput, useFilter } from "./hooks";

interface Alias {
  address: string;
  destinations: string[];
  wildcard: boolean;
  comment: string;
}

export function Aliases({ params }: PageProps) {
  const domains = useDomains();
  const [domain, setDomain] = useState(params.get("domain") ?? "");
  const filter = useFilter();
  const list = usePage<Alias>("/aliases", { domain, q: filter.q }, 25, "address");
  const [address, setAddress] = useState("");
  const [destinations, setDestinations] = useState("");
  const [wildcard, setWildcard] = useState(false);
  const create = async (e: Event) => {
    e.preventDefault();
    const body = { address: address.trim(), destinations: destinations.split(/[,\s]+/).filter(Boolean), wildcard };
    if (await attempt(() => api.post("/aliases", body), `Alias ${address} created`)) {
      setAddress("");
      setDestinations("");
      setWildcard(false);
      list.reload();
    }
  };
  return (
    <section>
      <h1>Aliases</h1>
      <form class="card inline-form" onSubmit={create} aria-label="New alias">
        <label>Address<input value={address} onInput={(e) => setAddress(e.currentTarget.value)} required
          placeholder="sales@example.org or @example.org" data-testid="alias-create-address" /></label>
        <label>Delivers to<input value={destinations} onInput={(e) => setDestinations(e.currentTarget.value)} required
          placeholder="alice@example.org, bob@…" data-testid="alias-create-destinations" /></label>
        <label class="check"><input type="checkbox" checked={wildcard} onChange={(e) => setWildcard(e.currentTarget.checked)} />Wildcard (% and _)</label>
        <button type="submit" class="primary" data-testid="alias-create-submit">Create alias</button>
      </form>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} aliases</h2>
          <FilterInput filter={filter} what="address" />
          <label class="filter">Domain
            <select value={domain} onChange={(e) => setDomain(e.currentTarget.value)}>
              <option value="">All domains</option>
              {domains.map((d) => <option key={d.name} value={d.name}>{d.name}</option>)}
            </select>
          </label>
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>No aliases.</Empty> : (
          <table>
            <thead><tr><SortTh field="address" list={list}>Address</SortTh><th>Delivers to</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.page?.items.map((a) => (
                <tr key={a.address} data-testid="alias-row">
                  <td><strong>{a.address}</strong>
                    {a.wildcard && <span class="badge">wildcard</span>}
                    {a.address.startsWith("@") && <span class="badge badge-accent">catch-all</span>}</td>
                  <td>{a.destinations.join(", ")}</td>
                  <td class="actions"><button type="button" class="danger" onClick={async () => {
                    if (confirm(`Delete ${a.address}?`) && (await attempt(() => api.del(`/aliases/${encodeURIComponent(a.address)}`), "Alias deleted"))) list.reload();
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
