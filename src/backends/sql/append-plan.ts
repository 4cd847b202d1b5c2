import type { AppendRequest, AppendResult } from '../../core/driver.ts';
import { DuplicateEventIdError, ExpectedVersionConflictError, InvalidArgumentError } from '../../core/errors.ts';
import { matchesExpectedVersion } from '../../core/expected-version.ts';

/** What an SQL store read before an append: the streams' current versions, and where any of the append's ids is stored. */
export interface AppendCheck {
  readonly versions: ReadonlyMap<string, number>;
  readonly stored: ReadonlyMap<string, { streamId: string; version: number }>;
}

/** One row to insert. */
export interface PlannedRow {
  readonly streamId: string;
  readonly version: number;
  readonly event: AppendRequest['events'][number];
}

/** Distinct streams and all event ids of an append (what `AppendCheck` must cover); an id twice is refused. */
export function appendKeys(requests: readonly AppendRequest[]): { streams: string[]; ids: string[] } {
  const ids = requests.flatMap((r) => r.events.map((e) => e.id));
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError('an append carries the same event id twice');
  return { streams: [...new Set(requests.map((r) => r.streamId))], ids };
}

/**
 * The rows of an append (several requests for `appendMany`), or the conflict or duplicate the
 * check finds, in request order as one transaction would meet them: a later request on the
 * same stream sees the versions an earlier one takes.
 */
export function planAppend(backend: string, requests: readonly AppendRequest[], check: AppendCheck): PlannedRow[] {
  const next = new Map(check.versions);
  const rows: PlannedRow[] = [];
  for (const request of requests) {
    const current = next.get(request.streamId) ?? 0;
    if (!matchesExpectedVersion(request.expectedVersion, current)) {
      throw new ExpectedVersionConflictError(request.streamId, request.expectedVersion, current, backend);
    }
    for (const e of request.events) {
      const existing = check.stored.get(e.id);
      if (existing) throw new DuplicateEventIdError(e.id, existing, backend);
    }
    let version = current;
    for (const e of request.events) rows.push({ streamId: request.streamId, version: ++version, event: e });
    next.set(request.streamId, version);
  }
  return rows;
}

/** The result of each request, given the offset each planned row got (in row order). */
export function appendResults(requests: readonly AppendRequest[], rows: readonly PlannedRow[], offsets: readonly bigint[]): AppendResult[] {
  let at = 0;
  return requests.map((r) => {
    const positions = r.events.map(() => ({ partition: 0, offset: offsets[at++]! }));
    return { nextExpectedVersion: rows[at - 1]!.version, positions };
  });
}
