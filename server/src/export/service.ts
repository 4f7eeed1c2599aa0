/**
 * Export bundles of an organization's log for the API (docs/ledger-spec.md §11).
 */
import type { Database } from '../db/client';
import type { BundleRecord } from '../ledger';
import type { LedgerService } from '../tlog/service';
import { exportBundle, exportBundleText, type ExportRange } from './bundle-export';

/** Streams export bundles. */
export class ExportService {
  constructor(
    private readonly database: Database,
    private readonly ledger: Pick<LedgerService, 'originOf'>,
  ) {}

  /**
   * The organization's export bundle for `range` (ledger/bundle-format.ts), record by record,
   * read in pages: stream it, never collect it.
   */
  exportBundle(org: string, range: ExportRange = {}): AsyncGenerator<BundleRecord, void, undefined> {
    return exportBundle(this.database.db, org, this.ledger.originOf(org), range);
  }

  /**
   * The same bundle as NDJSON text pieces, the event lines written straight from the rows
   * (export/event-line.ts): byte for byte `formatBundleRecord` of {@link exportBundle}'s records.
   */
  exportBundleText(org: string, range: ExportRange = {}): AsyncGenerator<string, void, undefined> {
    return exportBundleText(this.database.db, org, this.ledger.originOf(org), range);
  }
}
