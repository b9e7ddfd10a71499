import Glibc
import NIOConcurrencyHelpers

/// A joinable thread running one closure; if it cannot be started, the closure runs inline.
package final class PluginThread {
    private var thread: pthread_t?

    package init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ClosureBox(body))
        var t = pthread_t()
        if pthread_create(&t, nil, { raw in
            let box = Unmanaged<ClosureBox>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque()) == 0 {
            thread = t
        } else {
            box.takeRetainedValue().body()
        }
    }

    package func join() {
        if let thread { pthread_join(thread, nil) }
    }

    private final class ClosureBox {
        package let body: @Sendable () -> Void
        package init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

/// One slot per plug-in, written from the plug-ins' threads.
package final class FindingSlots: Sendable {
    private let slots: NIOLockedValueBox<[Finding?]>
    package init(count: Int) { slots = NIOLockedValueBox(Array(repeating: nil, count: count)) }
    package func set(_ i: Int, _ f: Finding) { slots.withLockedValue { $0[i] = f } }
    package var all: [Finding] { slots.withLockedValue { $0.compactMap { $0 } } }
}
