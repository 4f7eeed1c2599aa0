// The part of s3rver (which ships no types) the S3 archive tests use.
declare module 's3rver' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export default class S3rver {
    constructor(options: {
      directory: string;
      silent?: boolean;
      configureBuckets?: Array<{ name: string }>;
      vhostBuckets?: boolean;
    });
    /** Creates the configured buckets in the store. */
    configureBuckets(): Promise<void>;
    /** The Koa request handler. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
}
