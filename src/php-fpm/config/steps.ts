// Running a pure algorithm that needs answers from outside (file contents, directory listings)
// written once as a generator: it yields each question and receives the answer, or the error the
// answer failed with. One driver answers synchronously (in-memory readers, tests), the other
// awaits (the one System, whose reads are promises), so the algorithm exists once and stays pure.

/** Answers every question `steps` asks with `answer`, synchronously; returns its result. */
export function runSteps<Question, Answer, Result>(steps: Generator<Question, Result, Answer>, answer: (question: Question) => Answer): Result {
  let next = steps.next();
  while (next.done !== true) {
    let reply: Answer;
    try {
      reply = answer(next.value);
    } catch (error) {
      next = steps.throw(error);
      continue;
    }
    next = steps.next(reply);
  }
  return next.value;
}

/** runSteps with answers that are promises. */
export async function runStepsAsync<Question, Answer, Result>(
  steps: Generator<Question, Result, Answer>, answer: (question: Question) => Promise<Answer>,
): Promise<Result> {
  let next = steps.next();
  while (next.done !== true) {
    let reply: Answer;
    try {
      reply = await answer(next.value);
    } catch (error) {
      next = steps.throw(error);
      continue;
    }
    next = steps.next(reply);
  }
  return next.value;
}
