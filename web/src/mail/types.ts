import type { Address } from "../lib";

export interface Label {
  id: number;
  name: string;
  kind: string;
  threads_total: number;
  threads_unread: number;
}

export interface ThreadSummary {
  thread_id: number;
  participants: string;
  subject: string;
  snippet: string;
  labels: string[];
  n_emails: number;
  n_unread: number;
  has_attachments: boolean;
  is_starred: boolean;
  is_read: boolean;
  encryption_level: string;
  is_muted: boolean;
  last_date: string;
}

export interface Attachment {
  index: number;
  filename: string | null;
  content_type: string;
  size: number;
}

export interface EmailSummary {
  email_id: number;
  thread_id: number;
  subject: string;
  from: Address[];
  to: Address[];
  cc: Address[];
  date: string | null;
  received_at: string;
  snippet: string;
  labels: string[];
  is_read: boolean;
  is_starred: boolean;
  is_draft: boolean;
  encryption: string;
  has_attachments: boolean;
  attachments: Attachment[];
}

export interface EmailDetail extends EmailSummary {
  message_id: string | null;
  text_body: string | null;
  html_body: string | null;
}

export interface ThreadDetail extends ThreadSummary {
  emails: EmailSummary[];
}

export interface ComposeInit {
  to?: string;
  cc?: string;
  subject?: string;
  body?: string;
  threadId?: number;
  replyTo?: number;
  attachmentIds?: string[];
}

export const SYSTEM_LABEL_NAMES: Record<string, string> = {
  inbox: "Inbox",
  starred: "Starred",
  important: "Important",
  postponed: "Snoozed",
  sent: "Sent",
  drafts: "Drafts",
  archive: "Archive",
  spam: "Spam",
  trash: "Trash",
};

export const LABEL_ICONS: Record<string, string> = {
  inbox: "inbox",
  starred: "star",
  important: "flag",
  postponed: "clock",
  sent: "send",
  drafts: "draft",
  archive: "archive",
  spam: "spam",
  trash: "trash",
};
