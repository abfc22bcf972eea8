import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, type Page, type Query } from "../api";
import { errorToast, toast } from "../ui";

/** The sort after a click on `field`'s header: ascending, then descending, then ascending again. */
export function nextSort(current: string, field: string): string {
  return current === field ? `-${field}` : field;
}

/** One server-side page of a list (sorted by the server: `sort` is a field, - for descending),
 * reloaded when the query or the sort changes, or on demand. */
export function usePage<T>(path: string | null, query: Query, limit = 25, defaultSort = "") {
  const [offset, setOffset] = useState(0);
  const [sort, setSort] = useState(defaultSort);
  const [page, setPage] = useState<Page<T> | null>(null);
  const [loading, setLoading] = useState(false);
  const key = JSON.stringify([path, query, sort]);
  useEffect(() => setOffset(0), [key]);
  const reload = useCallback(async () => {
    if (path === null) return;
    setLoading(true);
    try {
      setPage(await api.get<Page<T>>(path, { ...query, offset, limit, sort: sort || undefined }));
    } catch (e) {
      errorToast(e);
    } finally {
      setLoading(false);
    }
  }, [key, offset, limit]);
  useEffect(() => void reload(), [reload]);
  const sortBy = (field: string) => setSort(nextSort(sort, field));
  return { page, offset, limit, setOffset, reload, loading, sort, sortBy };
}

export interface Domain {
  name: string;
  comment: string;
  max_users: number | null;
  max_aliases: number | null;
  max_quota_bytes: number | null;
  signup_enabled: boolean;
  dkim_selector: string | null;
  created_at: string;
}

/** Every domain the caller may see (for the domain pickers). */
export function useDomains(): Domain[] {
  const [domains, setDomains] = useState<Domain[]>([]);
  useEffect(() => {
    api.get<Page<Domain>>("/domains", { limit: 1000 }).then((p) => setDomains(p.items), errorToast);
  }, []);
  return domains;
}

/** Run an action; toast its error; true when it worked. */
export async function attempt(action: () => Promise<unknown>, done?: string): Promise<boolean> {
  try {
    await action();
    if (done) toast(done);
    return true;
  } catch (e) {
    errorToast(e);
    return false;
  }
}

/** A column header that sorts the list on the server by `field` (click again: descending). */
export function SortTh(props: { field: string; list: { sort: string; sortBy: (f: string) => void }; children: ComponentChildren }) {
  const { sort, sortBy } = props.list;
  const state = sort === props.field ? "ascending" : sort === `-${props.field}` ? "descending" : undefined;
  return (
    <th aria-sort={state ?? "none"}>
      <button type="button" class="sort" onClick={() => sortBy(props.field)} data-testid={`sort-${props.field}`}>
        {props.children}
        <span aria-hidden="true" class="sort-mark">{state === "ascending" ? "▲" : state === "descending" ? "▼" : "↕"}</span>
      </button>
    </th>
  );
}

/** The text a list is filtered by on the server (`q`): what is typed, and what is asked for
 *  once typing pauses (then `q` goes out; empty: no filter). */
export function useFilter(delay = 250): { text: string; q: string; setText: (t: string) => void } {
  const [text, setText] = useState("");
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = setTimeout(() => setQ(filterQuery(text)), delay);
    return () => clearTimeout(t);
  }, [text]);
  return { text, q, setText };
}

/** The `q` sent for a typed filter: trimmed, at most 320 characters (the API's bound). */
export function filterQuery(text: string): string {
  return text.trim().slice(0, 320);
}

/** The search box of a list (server-side filter). */
export function FilterInput(props: { filter: { text: string; setText: (t: string) => void }; what: string }) {
  return (
    <label class="filter">Find
      <input type="search" value={props.filter.text} onInput={(e) => props.filter.setText(e.currentTarget.value)}
        placeholder={props.what} maxLength={320} data-testid="list-filter" />
    </label>
  );
}
