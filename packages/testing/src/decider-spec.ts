import { expect } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";

type AnyEvent = { type: string; schemaVersion: number; data: unknown };
/** What a decision yields: events in drafts (tenant, workspace, aggregate around each). */
type Draft<E> = { event: E };

/**
 * Given/when/then for pure decisions, without a database: the state a command is decided
 * against is folded from the events that happened (`evolve`), as `load` reads it from the
 * read model in the service.
 */
export interface Decider<C, S, E extends AnyEvent> {
  initial: () => S;
  evolve: (state: S, event: E) => S;
  decide: (command: C, state: S) => Draft<E>[];
}

export interface Outcome<E> {
  /** The events decided, without their drafts' envelope fields. */
  events: E[];
  drafts: Draft<E>[];
  error?: AppError;
}

export function deciderSpec<C, S, E extends AnyEvent>(d: Decider<C, S, E>) {
  return {
    given(history: E[]) {
      const state = history.reduce(d.evolve, d.initial());
      return {
        when(command: C) {
          let outcome: Outcome<E>;
          try {
            const drafts = d.decide(command, state);
            outcome = { events: drafts.map((x) => x.event), drafts };
          } catch (err) {
            if (!(err instanceof AppError)) throw err;
            outcome = { events: [], drafts: [], error: err };
          }
          return {
            outcome,
            expectEvents(expected: E[]) {
              expect(outcome.error, outcome.error?.message).toBeUndefined();
              expect(outcome.events).toEqual(expected);
              return outcome;
            },
            expectRefusal(code: string, message?: RegExp) {
              expect(outcome.error, "expected a refusal").toBeInstanceOf(AppError);
              expect(outcome.error!.code).toBe(code);
              if (message) expect(outcome.error!.message).toMatch(message);
              return outcome;
            },
          };
        },
      };
    },
  };
}
