export * from './organizations';
export * from './api-keys';
export * from './events';
export * from './ledger';
export * from './alerts';
export * from './producer-keys';
export * from './identity';
export * from './privacy';
