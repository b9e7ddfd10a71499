import Logging
import NIOCore
import PosternMIME
import PosternSMTP
import PosternUtil

extension ClientConnection {
    /// RFC 6152 §3: a next hop that does not offer 8BITMIME may only be sent 7-bit data,
    /// whatever BODY= the message came with. 8-bit mail is converted to 7-bit MIME for it
    /// (``EightBitDowngrade``), or, where that cannot be done without changing the message,
    /// every recipient of the transaction fails with `554 5.6.3` and gets a DSN.
    ///
    /// 554, not 550: the message is refused for the whole transaction, no mailbox is at fault
    /// (RFC 5321 §4.2.3); 5.6.3 is "conversion required but not supported" (RFC 3463 §3.7).
    ///
    /// Next hops with 8BITMIME cost nothing here, 7-bit mail one scan for a high bit.
    /// XXX: the conversion runs on this connection's task; it is linear in the message and
    /// only happens for 8-bit mail to an old next hop.
    ///
    /// Returns the job to send, or nil when its recipients have their outcome.
    package func sevenBitReady(_ job: DeliveryJob, _ outcomes: inout [RecipientOutcome?]) -> DeliveryJob? {
        guard !offers("8BITMIME") else { return job }
        var log = logger
        log[metadataKey: "queue-id"] = "\(job.envelope.id)"
        let message: ByteBuffer
        do throws(SpoolError) {
            let eightBit = try EightBitScan.contains(job.head) ? true : job.message.containsEightBit()
            guard eightBit else { return job }
            message = try job.message.whole()
        } catch {
            log.error("cannot read the queue file: \(error)")
            for k in outcomes.indices { outcomes[k] = .deferred("cannot read the queue file: \(error)") }
            return nil
        }
        do throws(EightBitRefusal) {
            guard let result = try EightBitDowngrade.convert(Array(job.head.readableBytesView) + Array(message.readableBytesView))
            else { return job }
            log.info("converted to 7bit MIME for a next hop without 8BITMIME (\(result.summary))")
            return job.with(message: ByteBuffer(bytes: result.message))
        } catch {
            let r = Reply(554, EnhancedStatus(5, 6, 3), "next hop does not offer 8BITMIME and the message cannot be converted to 7 bit: \(error.hint)")
            for k in outcomes.indices { outcomes[k] = .failed(r) }
            return nil
        }
    }
}

extension DeliveryJob {
    /// The same job with other message bytes (the converted ones, head included).
    package func with(message: ByteBuffer) -> DeliveryJob {
        DeliveryJob(envelope: envelope, recipients: recipients, addresses: addresses, message: .bytes(message), head: ByteBuffer(),
                    finish: finish, retried: retried)
    }
}
