import PosternUtil
extension RuleSet {
    /// Parses a stand-alone rules file: rule lines first (no `[Rules]` header needed), then
    /// optional `[Rule:NAME]` sections. Used by `posternctl rules test --rules FILE`.
    public static func parse(_ text: String, path: String) throws(ConfigErrors) -> RuleSet {
        let document = INIParser.parse(text, file: path, initialSection: "Rules")
        var errors = document.errors
        for (key, section) in document.sections where key != INIParser.rulesSection && !key.hasPrefix("rule:") {
            errors.append(ConfigError(file: path, line: section.line, column: 1,
                                      message: "only [Rules] and [Rule:NAME] sections belong in a rules file"))
        }
        let rules = build(from: document.sections, file: path, errors: &errors)
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return rules
    }

    /// Builds the rule set from the parsed sections, appending every problem to `errors`.
    package static func build(from sections: [String: RawSection], file: String, errors: inout [ConfigError]) -> RuleSet {
        let baseDirectory = TextFile.directory(of: file)
        var groups: [String: [Setting]] = [:]
        var brokenGroups: Set<String> = []
        for (key, section) in sections where key.hasPrefix("rule:") {
            let name = String(key.dropFirst(5))
            let before = errors.count
            groups[name] = groupSettings(section, name: name, file: file, errors: &errors)
            if errors.count > before { brokenGroups.insert(name) }
        }
        var rules: [Rule] = []
        for line in sections[INIParser.rulesSection]?.ruleLines ?? [] {
            func report(_ offset: Int, _ message: String) {
                let (number, column) = line.position(of: offset)
                errors.append(ConfigError(file: file, line: number, column: column, message: message))
            }
            var parser = RuleParser(line.bytes, baseDirectory: baseDirectory)
            let parsed: RuleParser.Parsed
            do {
                parsed = try parser.parseRule()
            } catch {
                report(error.offset, error.message)
                continue
            }
            var settings: [Setting] = []
            var ownKeys: Set<String> = []
            for raw in parsed.settings {
                if ASCII.lowercased(raw.name) == "rule" {
                    let group = ASCII.lowercased(raw.value)
                    if let expanded = groups[group] {
                        settings += expanded
                    } else if !brokenGroups.contains(group) {
                        report(raw.nameOffset, "unknown rule group '\(raw.value)' (no [Rule:\(raw.value)] section)")
                    }
                    continue
                }
                guard ownKeys.insert(ASCII.lowercased(raw.name)).inserted else {
                    report(raw.nameOffset, "parameter '\(raw.name)' set twice in one rule")
                    continue
                }
                switch checkedSetting(name: raw.name, value: raw.value, group: nil) {
                case .success(let setting): settings.append(setting)
                case .failure(let failure): report(failure.atName ? raw.nameOffset : raw.valueOffset + failure.offset, failure.message)
                }
            }
            rules.append(Rule(line: line.line, text: line.text, flow: parsed.flow, settings: settings, condition: parsed.condition))
        }
        return RuleSet(rules: rules, groups: groups)
    }

    private static func groupSettings(_ section: RawSection, name: String, file: String, errors: inout [ConfigError]) -> [Setting] {
        var settings: [Setting] = []
        for key in section.order {
            for (index, raw) in section.keys[key]!.values.enumerated() {
                func report(_ column: Int, _ message: String) {
                    errors.append(ConfigError(file: file, line: raw.line, column: column, message: message))
                }
                if key == "rule" {
                    report(raw.keyColumn, "rule= cannot be used inside [\(section.name)]")
                } else if index > 0 {
                    report(raw.keyColumn, "duplicate key '\(raw.key)' in [\(section.name)]")
                } else {
                    switch checkedSetting(name: raw.key, value: raw.text, group: name) {
                    case .success(let setting): settings.append(setting)
                    case .failure(let failure): report(failure.atName ? raw.keyColumn : raw.column + failure.offset, failure.message)
                    }
                }
            }
        }
        return settings
    }

    private struct SettingFailure: Error {
        package var atName: Bool
        package var offset: Int
        package var message: String
    }

    private static func checkedSetting(name: String, value: String, group: String?) -> Result<Setting, SettingFailure> {
        let parameter: ParameterCatalog.Parameter
        switch ParameterCatalog.parameter(named: name) {
        case .success(let known): parameter = known
        case .failure(let error): return .failure(SettingFailure(atName: true, offset: 0, message: error.message))
        }
        switch ParameterCatalog.parse(value, as: parameter.kind) {
        case .success(let typed):
            return .success(Setting(name: parameter.name, value: value, typed: typed, group: group))
        case .failure(let error):
            return .failure(SettingFailure(atName: false, offset: error.offset, message: "\(parameter.name): \(error.message)"))
        }
    }
}
