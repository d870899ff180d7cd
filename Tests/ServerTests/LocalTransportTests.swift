import GRPCCore
@testable import Server
import Testing

/// The in-process transport's cancellation registry: a client that leaves
/// cancels the server's RPC, and whatever order the two sides end in, no
/// entry outlives the call (every gateway and lock call makes one).
@Suite struct LocalTransportTests {
    enum Step { case serving, served, clientCancelled, clientEnded }

    @Test(arguments: [
        ([Step.serving, .served, .clientEnded], false),
        ([Step.serving, .clientEnded, .served], true),
        ([Step.clientEnded, .serving, .served], true),
        ([Step.serving, .clientCancelled, .served, .clientEnded], true),
        ([Step.clientCancelled, .serving, .clientEnded, .served], true),
    ])
    func everyOrderOfEndingLeavesNothingBehind(_ steps: [Step], cancelsTheServer: Bool) {
        let registry = LocalTransport.Registry()
        let handle = ServerContext.RPCCancellationHandle()
        let id = registry.newID()
        for step in steps {
            switch step {
            case .serving: registry.serving(id, handle)
            case .served: registry.served(id)
            case .clientCancelled: registry.clientCancelled(id)
            case .clientEnded: registry.clientEnded(id)
            }
        }
        #expect(registry.openEntries == 0, "\(steps)")
        #expect(handle.isCancelled == cancelsTheServer, "\(steps)")
    }
}
