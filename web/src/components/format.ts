export function percent(score: number | null | undefined): string {
  return score == null ? "–" : `${Math.round(score * 100)}%`;
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "–";
}
