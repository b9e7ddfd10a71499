import Glibc
import Logging
import NIOCore
import PosternPolicy
import PosternRuntime
import PosternSMTP
import PosternSpool
import PosternUtil

/// One delivery attempt of one message: read it, group its pending routes into transactions,
/// hand each to its next hop's pool, and record what came back.
extension DeliveryService {
    func deliver(_ id: String) async {
        let started = WallClock.seconds
        let config = self.config   // one snapshot per message (SIGHUP may replace it)
        var log = logger
        log[metadataKey: "queue-id"] = "\(id)"
        guard let (file, message) = readForDelivery(id, log: log) else { return }
        guard let verdict = file.verdict, verdict.readyForDelivery else {
            // scannerd has work left on it (a scan, a DSN for a block): never deliver around it.
            if rename(layout.path(id, .outgoing), layout.path(id, .scan)) == 0 { log.warning("not fully scanned; moved back to scan/") }
            return
        }
        let plan = DeliveryPlan(verdict: verdict, defaultTLS: config.sender.tls, endpoints: endpoints)
        let head = addedHeader(id: id, envelope: file.envelope, verdict: verdict, config: config)
        var results = await send(plan, file: file, verdict: verdict, head: head, message: message)
        for k in plan.badRoutes {
            results[k] = .failed(Reply(554, EnhancedStatus(5, 3, 5), "bad route \(verdict.routes[k].endpoint) in queue file"))
        }
        await record(file: file, verdict: verdict, results: results, message: message, config: config, log: log,
                     started: started)
    }

    /// The spool file, its message left on disk to be read as it goes out; nil when there is
    /// nothing to deliver (delivered already, damaged, or unreadable for now).
    /// XXX: reads from the page cache run on the event loop (senderd's tasks run there): a
    /// thread-pool hop per message cost more than the read itself. Only fsyncs go to the
    /// thread pool.
    private func readForDelivery(_ id: String, log: Logger) -> (SpoolFile, SpooledMessage)? {
        do {
            return try SpoolFile.readForDelivery(path: layout.path(id, .outgoing))
        } catch let e as SpoolError where e.errno == ENOENT {
            return nil   // delivered already (a duplicate wake-up)
        } catch let e as SpoolFormatError {
            layout.moveToCorrupt(id, from: .outgoing, why: "unreadable queue file (\(e))", logger: log, level: .error)
            return nil
        } catch {
            log.error("cannot read queue file: \(error)")
            return nil
        }
    }

    /// What every copy gets before the spooled bytes: the loop guard and the plug-ins' fields.
    private func addedHeader(id: String, envelope e: Envelope, verdict: Verdict, config: PosternConfig) -> ByteBuffer {
        var head = ByteBuffer()
        head.writeString(loopGuard.header(host: config.general.hostname, id: id, bodyHash: e.bodyHash) + "\r\n")
        for h in verdict.addHeaders { head.writeString(h + "\r\n") }
        return head
    }

    /// Submits one job per transaction and waits until every next hop has answered for all of
    /// its recipients; outcomes by route index.
    private func send(_ plan: DeliveryPlan, file: SpoolFile, verdict: Verdict, head: ByteBuffer,
                      message: SpooledMessage) async -> [Int: RecipientOutcome] {
        let e = file.envelope
        return await withCheckedContinuation { (c: CheckedContinuation<[Int: RecipientOutcome], Never>) in
            let collector = OutcomeCollector(expected: plan.transactions.count, continuation: c)
            let several = plan.transactions.count > 1
            for (transaction, routeIndices) in plan.transactions {
                destination(transaction.endpoint, tls: transaction.tls).submit(DeliveryJob(
                    envelope: e, recipients: routeIndices.map { verdict.routes[$0].recipient },
                    addresses: routeIndices.map { verdict.routes[$0].address ?? e.recipients[verdict.routes[$0].recipient].address },
                    message: .spooled(message), head: DeliveryPlan.head(head, extra: transaction.headers),
                    finish: { outcomes in
                        if several { DeliveryService.recordFinal(file, routes: routeIndices, outcomes: outcomes) }
                        collector.add(Array(zip(routeIndices, outcomes)))
                    }))
            }
        }
    }

    /// Records one next hop's final answers as soon as they come, so that a senderd killed
    /// while another hop is still busy does not deliver these again (the page cache survives
    /// a killed process).
    private static func recordFinal(_ file: SpoolFile, routes: [Int], outcomes: [RecipientOutcome]) {
        let final = zip(routes, outcomes).compactMap { (k, o) -> (route: Int, status: RecipientStatus)? in
            switch o {
            case .delivered: return (k, .delivered)
            case .failed: return (k, .failed)
            case .deferred: return nil
            }
        }
        try? file.update(statuses: final, attempts: nil, sync: false)
    }
}
