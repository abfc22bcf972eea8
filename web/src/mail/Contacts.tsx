import { useEffect, useState } from "preact/hooks";
import { api, type Page } from "../api";
import { fullDate } from "../lib";
import { errorToast, Modal, toast } from "../ui";

export interface ContactEmail {
  address: string;
  public_key: string | null;
  fingerprint: string | null;
  key_user_ids: string[] | null;
  key_expires_at: string | null;
}

interface Contact {
  id: number;
  name: string;
  emails: ContactEmail[];
  fields: Record<string, string>;
}

interface PublicKey {
  fingerprint: string;
  email: string;
  algorithm: string;
  user_ids: string[];
  key_created_at: string;
  expires_at: string | null;
}

/** A fingerprint as people compare it: groups of four, the last 16 characters (the key id) apart. */
export function shortFingerprint(fp: string): string {
  const clean = fp.replace(/\s+/g, "").toUpperCase();
  return (clean.slice(-16).match(/.{1,4}/g) ?? []).join(" ");
}

/** Whether a pasted text looks like an armored public key (the server parses it for real). */
export function looksArmored(text: string): boolean {
  return /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----/.test(text);
}

/** The emails of an edited contact: the first replaced by the form's address (with the key
 *  pasted or found, else its stored key while the address stays), the others kept as they are. */
export function editedEmails(
  current: ContactEmail[], address: string, pasted: string, foundFingerprint: string | null,
): Record<string, string>[] {
  // A stored key goes back as the key itself (it may not be in the directory).
  const keyOf = (m: ContactEmail): Record<string, string> =>
    m.public_key ? { public_key: m.public_key } : m.fingerprint ? { fingerprint: m.fingerprint } : {};
  const keep = (m: ContactEmail): Record<string, string> => ({ address: m.address, ...keyOf(m) });
  const first: Record<string, string> = { address: address.trim() };
  if (pasted.trim()) first.public_key = pasted.trim();
  else if (foundFingerprint) first.fingerprint = foundFingerprint;
  else if (current[0] && current[0].address.toLowerCase() === address.trim().toLowerCase()) {
    return [{ ...keyOf(current[0]), address: address.trim() }, ...current.slice(1).map(keep)];
  }
  return [first, ...current.slice(1).map(keep)];
}

/** The caller's contacts with their OpenPGP keys, and the caller's own published keys. */
export function Contacts(props: { onClose: () => void }) {
  const [contacts, setContacts] = useState<Contact[] | null>(null);
  const [q, setQ] = useState("");
  const [name, setName] = useState("");
  const [address, setAddress] = useState("");
  const [key, setKey] = useState("");
  const [found, setFound] = useState<PublicKey | null>(null);
  const [mine, setMine] = useState<PublicKey[]>([]);
  const [myKey, setMyKey] = useState("");
  const [editing, setEditing] = useState<Contact | null>(null);
  const load = () =>
    api.get<Page<Contact>>("/contacts", { q, limit: 200 }).then((p) => setContacts(p.items), errorToast);
  const loadMine = () => api.get<PublicKey[]>("/me/keys").then(setMine, errorToast);
  useEffect(() => void load(), [q]);
  useEffect(() => void loadMine(), []);

  const lookUp = async () => {
    try {
      const keys = await api.get<PublicKey[]>("/keys", { email: address.trim() });
      setFound(keys[0] ?? null);
      if (!keys.length) toast(`No key published for ${address.trim()}`);
    } catch (e) {
      errorToast(e);
    }
  };
  const create = async (e: Event) => {
    e.preventDefault();
    const email: Record<string, string> = { address: address.trim() };
    if (key.trim()) email.public_key = key.trim();
    else if (found) email.fingerprint = found.fingerprint;
    try {
      if (editing) {
        await api.patch(`/contacts/${editing.id}`, {
          name: name.trim(), emails: editedEmails(editing.emails, address, key, found?.fingerprint ?? null),
        });
        toast(`Contact ${name.trim()} saved`);
        setEditing(null);
      } else {
        await api.post("/contacts", { name: name.trim(), emails: [email] });
        toast(`Contact ${name.trim()} added`);
      }
      setName("");
      setAddress("");
      setKey("");
      setFound(null);
      load();
    } catch (err) {
      errorToast(err);
    }
  };
  const edit = (c: Contact) => {
    setEditing(c);
    setName(c.name);
    setAddress(c.emails[0]?.address ?? "");
    setKey("");
    setFound(null);
  };
  const cancelEdit = () => {
    setEditing(null);
    setName("");
    setAddress("");
    setKey("");
    setFound(null);
  };
  const remove = async (c: Contact) => {
    if (!confirm(`Delete the contact ${c.name}?`)) return;
    try {
      await api.del(`/contacts/${c.id}`);
      load();
    } catch (err) {
      errorToast(err);
    }
  };
  const publish = async (e: Event) => {
    e.preventDefault();
    try {
      const k = await api.post<PublicKey>("/me/keys", { public_key: myKey.trim() });
      toast(`Key ${shortFingerprint(k.fingerprint)} published`);
      setMyKey("");
      loadMine();
    } catch (err) {
      errorToast(err);
    }
  };
  const unpublish = async (k: PublicKey) => {
    if (!confirm(`Withdraw the key ${shortFingerprint(k.fingerprint)}?`)) return;
    try {
      await api.del(`/me/keys/${k.fingerprint}`);
      loadMine();
    } catch (err) {
      errorToast(err);
    }
  };

  return (
    <Modal title="Contacts" onClose={props.onClose}>
      <section data-testid="contacts">
        <label>Find<input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="name or address" /></label>
        {contacts === null ? <p>Loading…</p> : contacts.length === 0 ? <p class="muted">No contacts yet.</p> : (
          <table>
            <tbody>
              {contacts.map((c) => (
                <tr key={c.id} data-testid="contact-row" data-name={c.name}>
                  <td><strong>{c.name}</strong></td>
                  <td>
                    {c.emails.map((m) => (
                      <div key={m.address}>
                        {m.address}{" "}
                        {m.fingerprint ? (
                          <span class="badge badge-ok" data-testid="contact-key" title={(m.key_user_ids ?? []).join(", ")}>
                            key {shortFingerprint(m.fingerprint)}
                          </span>
                        ) : <span class="muted small">no key</span>}
                      </div>
                    ))}
                  </td>
                  <td class="actions">
                    <button type="button" onClick={() => edit(c)} data-testid="contact-edit">Edit</button>
                    <button type="button" class="danger" onClick={() => remove(c)}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>{editing ? `Edit ${editing.name}` : "New contact"}</h3>
        <form class="form-grid" onSubmit={create} aria-label={editing ? "Edit contact" : "New contact"}>
          <label>Name<input value={name} required maxLength={200} onInput={(e) => setName(e.currentTarget.value)} data-testid="contact-name" /></label>
          <label>Address<input type="email" value={address} required onInput={(e) => { setAddress(e.currentTarget.value); setFound(null); }}
            data-testid="contact-address" /></label>
          {editing && editing.emails.length > 1 && (
            <p class="muted small wide">Also: {editing.emails.slice(1).map((m) => m.address).join(", ")} (kept)</p>
          )}
          <label class="wide">OpenPGP public key (optional: paste it, or look it up{editing?.emails[0]?.fingerprint ? "; empty keeps the current one" : ""})
            <textarea rows={3} value={key} onInput={(e) => setKey(e.currentTarget.value)} placeholder="-----BEGIN PGP PUBLIC KEY BLOCK-----"
              data-testid="contact-key-text" /></label>
          {key.trim() && !looksArmored(key) && <p class="form-error">That does not look like an armored public key.</p>}
          {found && <p data-testid="contact-key-found">Found key <code>{shortFingerprint(found.fingerprint)}</code> ({found.algorithm}, {found.user_ids.join(", ")})</p>}
          <div class="form-actions">
            <button type="button" onClick={lookUp} disabled={!address.trim()} data-testid="contact-key-lookup">Look up key</button>
            {editing && <button type="button" class="ghost" onClick={cancelEdit}>Cancel</button>}
            <button type="submit" class="primary" data-testid="contact-create">{editing ? "Save contact" : "Add contact"}</button>
          </div>
        </form>
        <h3>Your OpenPGP keys</h3>
        <table>
          <tbody>
            {mine.map((k) => (
              <tr key={k.fingerprint} data-testid="mykey-row" data-fingerprint={k.fingerprint}>
                <td><code>{shortFingerprint(k.fingerprint)}</code><div class="muted small">{k.algorithm} · {k.user_ids.join(", ")}</div></td>
                <td class="small">made {fullDate(k.key_created_at)}{k.expires_at && <div class="muted">expires {fullDate(k.expires_at)}</div>}</td>
                <td class="actions"><button type="button" class="danger" onClick={() => unpublish(k)}>Withdraw</button></td>
              </tr>
            ))}
            {mine.length === 0 && <tr><td class="muted">None published: others cannot find a key for you.</td></tr>}
          </tbody>
        </table>
        <form onSubmit={publish} aria-label="Publish a key">
          <label>Publish a public key for your address
            <textarea rows={3} value={myKey} required onInput={(e) => setMyKey(e.currentTarget.value)} placeholder="-----BEGIN PGP PUBLIC KEY BLOCK-----"
              data-testid="mykey-text" /></label>
          <button type="submit" disabled={!looksArmored(myKey)} data-testid="mykey-publish">Publish</button>
        </form>
      </section>
    </Modal>
  );
}
