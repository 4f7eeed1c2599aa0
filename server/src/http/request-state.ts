import type { Services } from '../api/context';
import type { Principal } from '../auth/api-keys';
import type { Logger } from '../observability/logger';

/** What the HTTP middleware attaches to each request (`req.state`). */
export interface RequestState {
  requestId: string;
  logger: Logger;
  services: Services;
  principal: Principal | null;
}
