import PosternPolicy

extension PluginSection {
    /// The scanner this section configures, ready to use. Plug-ins are small values over
    /// their settings; connections are made per scan.
    public var plugin: any ScanPlugin {
        switch settings {
        case .clamav(let s): ClamAVPlugin(settings: s)
        case .spamassassin(let s): SpamAssassinPlugin(settings: s)
        case .rspamd(let s): RspamdPlugin(settings: s)
        case .headersFilter(let s): HeadersFilterPlugin(settings: s)
        case .attachments(let s): AttachmentsPlugin(settings: s)
        }
    }
}
