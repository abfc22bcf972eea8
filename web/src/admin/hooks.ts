import { useCallback, useEffect, useState } from "preact/hooks";
import { api, type Page, type Query } from "../api";
import { errorToast, toast } from "../ui";

/** One server-side page of a list, reloaded when the query changes or on demand. */
export function usePage<T>(path: string | null, query: Query, limit = 25) {
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<T> | null>(null);
  const [loading, setLoading] = useState(false);
  const key = JSON.stringify([path, query]);
  useEffect(() => setOffset(0), [key]);
  const reload = useCallback(async () => {
    if (path === null) return;
    setLoading(true);
    try {
      setPage(await api.get<Page<T>>(path, { ...query, offset, limit }));
    } catch (e) {
      errorToast(e);
    } finally {
      setLoading(false);
    }
  }, [key, offset, limit]);
  useEffect(() => void reload(), [reload]);
  return { page, offset, limit, setOffset, reload, loading };
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
