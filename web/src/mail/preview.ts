// Which attachments the thread view previews in the page, and how (ThreadView's Preview).

export type PreviewKind = "image" | "pdf" | "text";

/** Raster images only: an SVG is a document (scripts, links), so it is downloaded instead. */
const IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);
/** Text shown as text, never as markup (so no text/html here: that is HTML mail's job). */
const TEXTS = new Set(["text/plain", "text/csv", "text/markdown", "text/calendar", "text/x-diff", "text/x-patch",
  "application/json", "text/x-log"]);

/** Bounds: the page fetches the whole attachment to show it. */
export const PREVIEW_MAX_BYTES = 20 * 1024 * 1024;
export const TEXT_PREVIEW_CHARS = 200_000;

/** How an attachment of this media type and size is previewed; null: download only. */
export function previewKind(contentType: string, size: number): PreviewKind | null {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  if (size > PREVIEW_MAX_BYTES) return null;
  if (IMAGES.has(type)) return "image";
  if (type === "application/pdf") return "pdf";
  if (TEXTS.has(type)) return "text";
  return null;
}

/** The text shown: cut at TEXT_PREVIEW_CHARS, saying so. */
export function previewText(text: string): string {
  if (text.length <= TEXT_PREVIEW_CHARS) return text;
  return `${text.slice(0, TEXT_PREVIEW_CHARS)}\n\n[… ${text.length - TEXT_PREVIEW_CHARS} more characters: download the file to read them all]`;
}
