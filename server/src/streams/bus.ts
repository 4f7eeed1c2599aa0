/**
 * The notification bus of the live streams: "organization X's log grew to size N" and "alert A of
 * organization X changed", from the replica that appended or changed it to every replica with a
 * client streaming X. Redis pub/sub when configured (one channel per organization, subscribed only
 * while this replica streams it), in process otherwise; both behind {@link StreamBus}.
 *
 * Notifications are small (a size, or one alert): the events themselves are read from the
 * database by the replica that streams them, so a missed notification delays a client until the
 * next one but never loses an event.
 */
import type Redis from 'ioredis';
import type { AlertChange, AlertView } from '../alerts/service';

/** What travels on the bus. */
export type StreamNotice = { kind: 'events'; size: number } | { kind: 'alert'; change: AlertChange; alert: AlertView };

/** Publish to and listen on one organization's notifications. */
export interface StreamBus {
  publish(org: string, notice: StreamNotice): void;
  /** Resolves once listening (with Redis: once the SUBSCRIBE is acknowledged); returns the stop function. */
  listen(org: string, handler: (notice: StreamNotice) => void): Promise<() => void>;
  close(): Promise<void>;
}

/** In-process bus (embedded default: one process is every replica). */
export class MemoryStreamBus implements StreamBus {
  private readonly handlers = new Map<string, Set<(n: StreamNotice) => void>>();

  publish(org: string, notice: StreamNotice): void {
    for (const h of this.handlers.get(org) ?? []) h(notice);
  }

  listen(org: string, handler: (notice: StreamNotice) => void): Promise<() => void> {
    let set = this.handlers.get(org);
    if (!set) this.handlers.set(org, (set = new Set()));
    set.add(handler);
    return Promise.resolve(() => {
      set.delete(handler);
      if (set.size === 0) this.handlers.delete(org);
    });
  }

  close(): Promise<void> {
    this.handlers.clear();
    return Promise.resolve();
  }
}

/**
 * Redis pub/sub: PUBLISH on the shared connection (fire and forget), SUBSCRIBE on a dedicated
 * connection. While Redis fails, notices are delivered to this process's own listeners only
 * (`onError` is told), so clients of this replica still see its appends.
 */
export class RedisStreamBus implements StreamBus {
  private readonly subscriber: Redis;
  private readonly local = new MemoryStreamBus();
  private readonly channels = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    // A subscriber connection may queue its SUBSCRIBE until connected; ioredis re-subscribes after
    // a reconnect by itself.
    this.subscriber = redis.duplicate({ enableOfflineQueue: true, lazyConnect: false });
    this.subscriber.on('error', (err: Error) => this.onError(err));
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const org = channel.toString('utf8').slice(this.channelPrefix.length);
      let notice: StreamNotice;
      try {
        notice = JSON.parse(message.toString('utf8')) as StreamNotice;
      } catch (err) {
        this.onError(err);
        return;
      }
      this.local.publish(org, notice);
    });
  }

  private get channelPrefix(): string {
    return `${this.prefix}stream:`;
  }

  publish(org: string, notice: StreamNotice): void {
    this.redis.publish(this.channelPrefix + org, JSON.stringify(notice)).catch((err: unknown) => {
      this.onError(err);
      this.local.publish(org, notice);
    });
  }

  async listen(org: string, handler: (notice: StreamNotice) => void): Promise<() => void> {
    const stop = await this.local.listen(org, handler);
    const n = this.channels.get(org) ?? 0;
    this.channels.set(org, n + 1);
    if (n === 0) {
      // Redis down: listen locally now (the SUBSCRIBE stays queued and completes on reconnect).
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000)));
      try {
        await Promise.race([this.subscriber.subscribe(this.channelPrefix + org), gaveUp]);
      } catch (err) {
        this.onError(err);
      } finally {
        clearTimeout(timer);
      }
    }
    return () => {
      stop();
      const left = (this.channels.get(org) ?? 1) - 1;
      if (left > 0) {
        this.channels.set(org, left);
        return;
      }
      this.channels.delete(org);
      this.subscriber.unsubscribe(this.channelPrefix + org).catch((err: unknown) => this.onError(err));
    };
  }

  async close(): Promise<void> {
    await this.local.close();
    this.subscriber.disconnect();
  }
}
