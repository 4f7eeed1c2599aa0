/**
 * What counts as a pinned image: the one answer the constructs' prop checks and the
 * `no-latest-tag` policy rule share.
 */
import fc from 'fast-check';
import { unpinnedImageReason } from '../src/image-reference';

const DIGEST = `sha256:${'ab12'.repeat(16)}`;

describe('unpinnedImageReason', () => {
  it.each([
    'pgvector/pgvector:0.8.6-pg17',
    'redis:7.2.7-alpine',
    'oliver006/redis_exporter:v1.67.0',
    'public.ecr.aws/zinclabs/openobserve:v0.14.0',
    'ghcr.io/smedrec/audit-server:0.1.0',
    'registry.example.org:5000/team/app:2.0',
    `pgvector/pgvector@${DIGEST}`,
    `pgvector/pgvector:pg17@${DIGEST}`,
  ])('accepts %s', (image) => {
    expect(unpinnedImageReason(image)).toBeUndefined();
  });

  it.each([
    ['pgvector/pgvector:pg17', 'tag pg17 has no version number'],
    ['redis:alpine', 'tag alpine has no version number'],
    ['nginx:stable', 'tag stable has no version number'],
    ['node:lts', 'tag lts has no version number'],
    ['node:latest', 'tag latest has no version number'],
    ['postgres:17', 'tag 17 has no version number'],
    ['redis:7-alpine', 'tag 7-alpine has no version number'],
    ['redis', 'tag missing'],
    ['redis:', 'tag missing'],
    ['registry.example.org:5000/team/app', 'tag missing'],
    ['pgvector/pgvector@sha256:abc', 'digest is not sha256 with 64 hex digits'],
    [`pgvector/pgvector@sha512:${'a'.repeat(128)}`, 'digest is not sha256 with 64 hex digits'],
  ])('rejects %s: %s', (image, reason) => {
    expect(unpinnedImageReason(image)).toBe(reason);
  });

  it('accepts any tag that carries a version number, and no tag made of letters and single numbers only', () => {
    const repo = fc.stringMatching(/^([a-z0-9.-]+(:[0-9]{2,5})?\/)?[a-z0-9]+(\/[a-z0-9_-]+)?$/);
    const versioned = fc
      .tuple(fc.stringMatching(/^[a-z]{0,4}$/), fc.nat(99), fc.nat(99), fc.stringMatching(/^(-[a-z0-9]{1,8})?$/))
      .map(([prefix, major, minor, suffix]) => `${prefix}${major}.${minor}${suffix}`);
    const rolling = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((t) => !/[0-9]\.[0-9]/.test(t));
    fc.assert(fc.property(repo, versioned, (r, tag) => unpinnedImageReason(`${r}:${tag}`) === undefined));
    fc.assert(fc.property(repo, rolling, (r, tag) => unpinnedImageReason(`${r}:${tag}`) === `tag ${tag} has no version number`));
  });
});
