import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool

extension StageScan {
    /// What one scan learns as it goes: the open recipients, their filter lists, and their
    /// decisions once the findings are in.
    struct Context {
        let config: PosternConfig
        let stage: ScanStage
        let envelope: Envelope
        let previous: Verdict?
        /// Header rules need the header; plug-ins parse what they need themselves.
        let headers: [HeaderField]?
        let engine: ScanEngine
        /// Recipients still to decide, envelope order. A recipient redirected before the queue
        /// has several routes: it is still one recipient.
        let open: [Int]
        /// Each open recipient's plug-ins, in `open`'s order.
        let lists: [[String]]
        private(set) var decisions: [RecipientDecision] = []
        private(set) var byRecipient: [Int: RecipientDecision] = [:]

        init(config: PosternConfig, stage: ScanStage, envelope e: Envelope, previous: Verdict?, headers: [HeaderField]?) {
            self.config = config
            self.stage = stage
            self.envelope = e
            self.previous = previous
            self.headers = headers
            let engine = ScanEngine(config: config)
            self.engine = engine
            let open = previous.map { v in StageScan.unique(v.routes.filter { $0.status == .pending }.map(\.recipient)) }
                ?? Array(e.recipients.indices)
            self.open = open
            self.lists = open.map { i in
                if stage == .beforeQueue { return engine.filters(.beforeQueue, for: e, recipient: i, headers: headers) }
                guard previous == nil else { return engine.filters(.afterQueue, for: e, recipient: i, headers: headers) }
                return engine.allFilters(for: e, recipient: i, headers: headers)
            }
        }

        /// Every plug-in any open recipient gets, each once.
        var filterNames: [String] { StageScan.unique(lists.flatMap { $0 }) }

        var baseScore: Double { previous?.score ?? 0 }

        mutating func decide(_ findings: [Finding]) {
            decisions = zip(open, lists).map { i, list in
                engine.decide(findings, filters: list, envelope: envelope, recipient: i, headers: headers, baseScore: baseScore)
            }
            byRecipient = Dictionary(uniqueKeysWithValues: decisions.map { ($0.recipient, $0) })
        }

        /// What decision `d` means for its recipient at end of data, before the queue.
        func fate(_ d: RecipientDecision) -> RecipientFate {
            RouteResolver(config: config).fate(of: d.main, for: envelope, recipient: d.recipient, headers: headers,
                                               blocks: d.blocks, score: d.score)
        }

        /// A yes/no parameter for recipient `i`, seeing what its scan saw.
        func flag(_ parameter: String, _ i: Int, default value: Bool) -> Bool {
            engine.flag(parameter, for: envelope, recipient: i, headers: headers, scanned: byRecipient[i], default: value)
        }
    }
}
