// Status conditions. `kubectl wait --for=condition=Available stegocluster/x` reads these.
import type { Condition, ConditionStatus } from './types.js';

export const CONDITION_TYPES = ['Available', 'Progressing', 'Degraded', 'LeaderElected', 'QuorumLost'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface ConditionInput {
  type: ConditionType | 'FrontDoorReady';
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Returns the list with `input` set: lastTransitionTime moves only when the status changes, so a pass that
 * learns nothing new produces an identical list (and no status write).
 */
export function setCondition(list: readonly Condition[], input: ConditionInput, generation: number, now: Date): Condition[] {
  const old = list.find((c) => c.type === input.type);
  const lastTransitionTime = old && old.status === input.status ? old.lastTransitionTime : now.toISOString();
  const next: Condition = { ...input, lastTransitionTime, observedGeneration: generation };
  const rest = list.filter((c) => c.type !== input.type);
  return [...rest, next].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

export function isTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === 'True';
}
