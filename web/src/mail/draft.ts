// Draft autosave: the compose window's fields are stored as a draft (POST /emails draft:true)
// a moment after the last edit, and from then on edited in place (PATCH /emails/{id} with
// If-Match: the version this window last saw, so another tab's edit is a 412, not lost).

import { ApiError } from "../api";

export const AUTOSAVE_MS = 1500;

export interface DraftFields {
  to: string[];
  cc: string[];
  subject: string;
  body: string;
  html_body?: string;
  attachment_ids?: string[];
  from_address?: string;
}

export interface DraftApi {
  create(fields: DraftFields): Promise<{ email_id: number | null }>;
  update(id: number, fields: DraftFields, version: number): Promise<{ version: number }>;
}

export type DraftState = "new" | "saving" | "saved" | "conflict" | "error";

/** One compose window's draft: saves serialised (never two creates), nothing sent twice. */
export class Draft {
  id: number | null = null;
  version = 0;
  state: DraftState = "new";
  private saved = "";
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly server: DraftApi, private readonly onState: (s: DraftState) => void = () => {}, baseline?: DraftFields) {
    // A window opened with content (a reply's quote, a signature) is not a draft until edited.
    if (baseline) this.saved = JSON.stringify(baseline);
  }

  /** Whether `fields` differ from what was last stored (or from the opening content). */
  changed(fields: DraftFields): boolean {
    return JSON.stringify(fields) !== this.saved;
  }

  /** Store `fields` after any save under way; a no-op when nothing changed or after a conflict. */
  save(fields: DraftFields): Promise<void> {
    this.chain = this.chain.then(() => this.saveNow(fields));
    return this.chain;
  }

  private async saveNow(fields: DraftFields): Promise<void> {
    if (this.state === "conflict" || !this.changed(fields)) return;
    this.set("saving");
    const snapshot = JSON.stringify(fields);
    try {
      if (this.id === null) {
        const r = await this.server.create(fields);
        this.id = r.email_id;
        this.version = 1;
      } else {
        this.version = (await this.server.update(this.id, fields, this.version)).version;
      }
      this.saved = snapshot;
      this.set("saved");
    } catch (e) {
      this.set(e instanceof ApiError && e.status === 412 ? "conflict" : "error");
      if (this.state === "error") throw e;
    }
  }

  private set(s: DraftState): void {
    this.state = s;
    this.onState(s);
  }
}
