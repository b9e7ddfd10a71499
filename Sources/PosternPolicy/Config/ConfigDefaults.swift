import PosternSMTP
/// Every default of the core sections in one place, each with why.
public enum ConfigDefaults {
    /// FHS place for a queue; `posternctl run` uses `./var/spool` through the sample config.
    public static let spoolDir = "/var/spool/postern"
    /// systemd's RuntimeDirectory; sockets between the daemons live here.
    public static let runDir = "/run/postern"
    /// Quiet enough for production, still one line per message.
    public static let logLevel = LogLevel.info
    /// amavisd-new's and Dr.Web MailD's customary port for the filter.
    public static let receiverAddress = "inet:10024@127.0.0.1"
    /// Only the local MTA may hand mail to the filter unless the admin opens it.
    public static let protectedNetworks = ["127.0.0.0/8", "::1/128"]
    /// Postfix's `message_size_limit` default is 10 MB; being smaller than the MTA would refuse mail it took.
    public static let maxMessageSize = 10 << 20
    /// RFC 5321 §4.5.3.1.8 asks for at least 100; Postfix allows 1000.
    public static let maxRecipients = 1000
    /// Postfix's default process limit is 100 per service; leave room for two MTAs.
    public static let maxSessions = 200
    /// RFC 5321 §4.5.3.2 server timeout is 5 minutes.
    public static let commandTimeout = Duration.seconds(300)
    /// Same as the command timeout, as Postfix's `smtpd_timeout`.
    public static let dataTimeout = Duration.seconds(300)
    /// Stress mode begins when this share of `MaxSessions` (in percent) is open: early enough
    /// that the shorter timeouts free sessions before newcomers are turned away at the limit.
    public static let stressThreshold = 80
    /// Postfix's stress-dependent `smtpd_timeout` (`${stress?{10}:{300}}s`): an MTA answers
    /// in milliseconds, so 10 s only cuts off clients that hold a session without using it.
    public static let stressCommandTimeout = Duration.seconds(10)
    /// As ``stressCommandTimeout``; the minimum data rate still applies on top.
    public static let stressDataTimeout = Duration.seconds(10)
    /// Off: the MTA that feeds the filter is usually one address and the only client, and it
    /// opens as many sessions as its own process limit allows (Postfix's anvil limit is for
    /// the open Internet, with `$mynetworks` exempt).
    public static let clientConnectionLimit = 0
    /// Off, for the same reason as ``clientConnectionLimit``.
    public static let clientConnectionRateLimit = 0
    /// Postfix's `anvil_rate_time_unit`.
    public static let clientRateTimeUnit = Duration.seconds(60)
    /// The local MTA is never limited per address, even when an administrator sets the limits
    /// for other hosts in `ProtectedNetworks` (Postfix's `smtpd_client_event_limit_exceptions`
    /// is `$mynetworks`).
    public static let limitExempt = ["127.0.0.0/8", "::1/128"]
    /// A scanner that is down must never let mail through unchecked (DESIGN.md §5).
    public static let processingErrors = "tempfail"
    /// Postfix's `hopcount_limit` is 50.
    public static let maxReceivedHeaders = 50
    /// A message may come back through the filter once (an alias that leads out and back in,
    /// a second MTA sharing the key): two passes are normal, a third is a loop.
    public static let maxFilterPasses = 2
    /// Stays inside Postfix's default 300 s wait for the end-of-data reply.
    public static let scanTimeout = Duration.seconds(300)
    /// The local MTA's unfiltered return port (Postfix FILTER_README, docs/exim.md). Never its
    /// port 25: that one hands mail to the filter, and mail sent there would come back for ever.
    public static let senderAddress = "inet:10025@127.0.0.1"
    /// RFC 5321 §4.5.3.2.1 initial 220 wait is 5 minutes; 30 s is what Postfix uses to connect.
    public static let connectTimeout = Duration.seconds(30)
    /// RFC 5321 §4.5.3.2.6: the DATA termination reply may take 10 minutes.
    public static let senderDataTimeout = Duration.seconds(600)
    /// Enough parallelism for a local MTA without exhausting its smtpd processes.
    public static let maxConnections = 20
    /// Back-off for deferred mail, the last interval repeating.
    public static let retryIntervals: [Duration] = [.seconds(60), .seconds(300), .seconds(900), .seconds(3600)]
    /// Opportunistic TLS to the next hop: encryption whenever it is offered, never a lost
    /// message when it is not. Postfix's own default is `none`, but `may` is what its TLS_README
    /// recommends, and a return hop to another host should not cross the network in clear.
    public static let senderTLS = TLSPolicy.may
    /// Postfix's `maximal_queue_lifetime`.
    public static let maxQueueLifetime = Duration.seconds(5 * 86400)
    /// Postfix's `delay_warning_time` default, 0 (off): a delay DSN is something the
    /// administrator turns on, and Postern's MTA may already send its own.
    public static let delayWarningTime = Duration.zero
    /// Who receives admin notifications when nobody configured it.
    public static let adminMail = "root@localhost"
    /// How long quarantined mail is kept before it is removed.
    public static let quarantineStoredTime = Duration.seconds(30 * 86400)
    /// Cap on the quarantine's total size; the oldest entries go first.
    public static let quarantineMaxSize = 1 << 30
    /// A release token's life: a week covers a notice read after a long weekend, and is well
    /// inside StoredTime, after which there is nothing left to release.
    public static let quarantineReleaseLifetime = Duration.seconds(7 * 86400)
}
