import Logging
import PosternPolicy
import PosternSMTP

/// Log lines about refusals, Postfix style, so that every recipient's fate can be followed.
extension SMTPServerHandler {
    /// `NOQUEUE: reject: RCPT from [client]: 550 …; from=<…> to=<…>`, as Postfix's smtpd logs
    /// a refused MAIL or RCPT: the refused recipient never gets a queue id, but it gets a line.
    package func logRefusedCommand(_ action: ReceiveStateMachine.Action, _ framed: FramedLine) {
        let verb = machine.session.lastVerb
        guard verb == "MAIL" || verb == "RCPT", case .line(let l) = framed else { return }
        let first: Reply?
        switch action {
        case .reply(let replies), .close(let replies, _), .abortMessage(let replies): first = replies.first
        default: first = nil
        }
        guard let r = first, !r.isPositive else { return }
        let line = String(buffer: l)
        let argument = line.firstIndex(of: "<").map { open in
            String(line[open...].prefix { $0 != ">" }.dropFirst().prefix(SMTPDefaults.maxCommandLine))
        } ?? ""
        var fields: Logger.Metadata = ["from": "<\(machine.session.mailFrom ?? (verb == "MAIL" ? argument : ""))>"]
        if verb == "RCPT" { fields["to"] = "<\(argument)>" }
        logger.notice("NOQUEUE: reject: \(verb): \(r)", metadata: fields)
    }

    /// The log of a refusal at end of data: for a message refused as a whole (`size` given)
    /// one line with its sender, size and Message-ID, then one `to=` line per refused recipient (Postfix
    /// style, so that every recipient's fate can be followed by its queue id).
    package func logRefused(_ log: Logger, _ ending: ReceiveStateMachine.Ending, size: Int? = nil) {
        if let size {
            var fields: Logger.Metadata = [
                "from": "<\(ending.mailFrom)>", "nrcpt": "\(ending.recipients.count)", "size": "\(size)",
            ]
            if let mid = inspector.messageID { fields["message-id"] = "\(mid)" }
            log.notice("refused", metadata: fields)
        }
        for (rcpt, outcome) in zip(ending.recipients, ending.outcomes) where !outcome.isQueued {
            let r = machine.table.reply(outcome)
            let dsn = r.status.map { "\($0)" } ?? (r.isTransient ? "4.0.0" : "5.0.0")
            log.notice("to=<\(rcpt.address)>, dsn=\(dsn), status=\(r.isTransient ? "deferred" : "refused") (\(r))")
        }
    }

    /// A client over its address's limits, as Postfix's smtpd logs anvil's verdicts.
    package func logAdmission(_ action: ReceiveStateMachine.Action, _ admission: SessionRegistry.Admission) {
        guard case .close(_, let why?) = action else { return }
        let r = config.receiver
        switch why {
        case .clientConnectionLimit:
            logger.warning("Connection concurrency limit exceeded: \(admission.client.sessions) from \(machine.session.clientIP) (ClientConnectionLimit \(r.clientConnectionLimit))")
        case .clientConnectionRate:
            logger.warning("Connection rate limit exceeded: \(admission.client.connections) from \(machine.session.clientIP) for \(ValueSyntax.format(r.clientRateTimeUnit)) (ClientConnectionRateLimit \(r.clientConnectionRateLimit))")
        default: break
        }
    }

    /// Once when receiverd enters stress mode and once when it leaves it.
    package func logStress(_ change: StressGauge.Change?, sessions: Int) {
        let r = config.receiver
        switch change {
        case .entered?:
            logger.warning("stress mode: \(sessions) of MaxSessions \(r.maxSessions) sessions open (StressThreshold \(r.stressThreshold)%): CommandTimeout \(ValueSyntax.format(machine.commandTimeout(stressed: true))), DataTimeout \(ValueSyntax.format(machine.dataTimeout(stressed: true)))")
        case .left?:
            logger.notice("stress mode ended: \(sessions) sessions open")
        case nil:
            break
        }
    }
}
