import NIOConcurrencyHelpers

/// Gathers the outcomes of one message's jobs (one per next hop) and resumes its delivery
/// task once all have reported.
package final class OutcomeCollector: Sendable {
    private let state: NIOLockedValueBox<(left: Int, results: [Int: RecipientOutcome])>
    private let continuation: CheckedContinuation<[Int: RecipientOutcome], Never>

    package init(expected: Int, continuation: CheckedContinuation<[Int: RecipientOutcome], Never>) {
        state = NIOLockedValueBox((expected, [:]))
        self.continuation = continuation
        if expected == 0 { continuation.resume(returning: [:]) }
    }

    package func add(_ outcomes: [(Int, RecipientOutcome)]) {
        let done: [Int: RecipientOutcome]? = state.withLockedValue { s in
            for (k, o) in outcomes { s.results[k] = o }
            s.left -= 1
            return s.left == 0 ? s.results : nil
        }
        if let done { continuation.resume(returning: done) }
    }
}
