//! The Chinese text of the CN security assessment: the language of its regulator (issue 14).
//!
//! The report's data holds its labels in English (they are also its JSON); the Chinese version
//! is rendered from the same values, so every figure is the same in both versions: only the
//! words around the figures come from here. Items are found by their stable id, figures by
//! their English label (every label `compile::assessment` writes is here; a test walks a
//! compiled report and finds no label left in English). Citations follow Chinese usage
//! (第二十三条); counts and durations keep Arabic numerals, exactly as in the English version.

/// The title of the Chinese version.
pub(crate) const ASSESSMENT_TITLE: &str = "人工智能拟人化互动服务安全评估报告";

/// The legal basis line under the title.
pub(crate) const BASIS: &str = "《人工智能拟人化互动服务管理暂行办法》第二十二条、第二十三条";

/// An item's citation, title and guidance, by its id.
pub(crate) fn item(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match id {
        "safeguards" => (
            "第二十三条；第九条",
            "安全保障措施与管理制度",
            "请说明第九条所要求的各项管理制度（算法与科技伦理审查、信息内容管理、数据安全、个人信息保护、防范欺诈、应急处置预案）及其配备的人员。",
        ),
        "training-data" => (
            "第二十三条；第十一条",
            "训练数据处理情况",
            "请附语料安全评估摘要（`tutela screen`：按来源统计的违规比例及 5% 判定规则、人工抽检与技术抽检样本及其合格率）以及模型安全评估结果（`tutela assess`）。",
        ),
        "extreme-situations" => (
            "第二十三条；第十三条",
            "用户极端情境识别、应急处置与干预情况",
            "根据本期的干预记录、转人工个案、通知发送记录及计数器统计生成。",
        ),
        "user-scale" => (
            "第二十三条；第二十二条第（三）项",
            "用户规模",
            "注册用户按本服务对注册的定义统计；月活跃用户按报告时区的自然月统计。",
        ),
        "usage-duration" => (
            "第二十三条；第十八条",
            "使用时长",
            "依据第十八条，用户连续使用每满 2 小时，应提示一次使用时长。两次互动间隔超过空闲重置时长（随每项处置决定记录，默认为 30 分钟）即视为连续使用中断，并开始新的会话，因此只有时长超过 2 小时的会话才会触发提示：所列提示次数应与时长超过 2 小时的会话数对照理解，而不应与使用总时长对照。各项分布见下文用量部分。",
        ),
        "age-structure" => (
            "第二十三条",
            "年龄结构",
            "按系统记录的年龄状态统计：未知、自称成年、疑似未成年人、已知未成年人、已核验成年。",
        ),
        "minors-elderly" => (
            "第二十三条；第十四条、第十五条",
            "未成年人与老年人保护",
            "面向老年用户的健康使用引导与求助支持属于运营方流程，请在此补充说明。",
        ),
        "complaints" => (
            "第二十三条；第二十一条",
            "申诉与投诉处理",
            "根据投诉与申诉记录统计生成。",
        ),
        "rectification" => (
            "第二十三条；第二十四条",
            "重大风险整改情况",
            "请逐项列明自上次评估以来发现的重大风险及其整改情况。",
        ),
        _ => return None,
    })
}

/// A figure's label in Chinese, from its English label.
pub(crate) fn figure_label(en: &str) -> Option<String> {
    let fixed = match en {
        "Profiles in force" => "现行规则配置",
        "Users at risk identified" => "识别出存在风险的用户",
        "Crisis referrals shown (help lines of the person's jurisdiction, every jurisdiction)" => {
            "已提供的危机求助转介（向用户展示其所在法域的求助热线，涵盖全部法域）"
        }
        "  of which counted for US crisis-referral duties" => "  其中计入美国危机转介义务统计的",
        "Replies replaced by tutela" => "由 tutela 替换的回复",
        "Model replies withheld" => "被拦截、未向用户发出的模型回复",
        "Cases opened for a human" => "转交人工处置的个案",
        "Human takeovers" => "人工接管次数",
        "Median time to a human (claimed cases)" => "转人工响应时间中位数（已认领个案）",
        "Guardian / emergency-contact notifications" => "监护人、紧急联系人通知",
        "Registered users" => "注册用户数",
        "Monthly active users (last month)" => "月活跃用户数（期末月份）",
        "Minutes of use in the period" => "本期累计使用时长（分钟）",
        "Median session" => "单次会话时长中位数",
        "Usage-time reminders shown" => "已发出的使用时长提示",
        "Sessions longer than 2 hours" => "时长超过 2 小时的会话",
        "Known and suspected minors" => "已知及疑似未成年人",
        "Suspected minors identified in the period" => "本期识别出的疑似未成年人",
        "Daily budgets enforced" => "执行每日使用时长限额的次数",
        "Quiet-hours replies" => "夜间限制时段内的答复次数",
        "Intimate personas refused to minors" => "拒绝向未成年人提供亲密关系角色的次数",
        "Received" => "收到",
        "Still open" => "尚未办结",
        "Past the published time limit" => "超过公布处理时限",
        "Published time limit" => "公布的处理时限",
        other => {
            if let Some(rest) = other.strip_prefix("Notifications: ") {
                return notification(rest).map(|n| format!("通知：{n}"));
            }
            return age_state(&other.replace(' ', "_")).map(str::to_owned);
        }
    };
    Some(fixed.to_owned())
}

/// `guardian (sent)` → `监护人（已发送）`.
fn notification(en: &str) -> Option<String> {
    let (kind, status) = en.strip_suffix(')')?.split_once(" (")?;
    let kind = match kind {
        "guardian" => "监护人",
        "emergency contact" => "紧急联系人",
        _ => return None,
    };
    let status = match status {
        "sent" => "已发送",
        "pending" => "待发送",
        "failed" => "发送失败",
        _ => return None,
    };
    Some(format!("{kind}（{status}）"))
}

/// A recorded age state (`known_minor`) in Chinese.
pub(crate) fn age_state(key: &str) -> Option<&'static str> {
    Some(match key {
        "unknown" => "未知",
        "self_declared_adult" => "自称成年",
        "suspected_minor" => "疑似未成年人",
        "known_minor" => "已知未成年人",
        "verified_adult" => "已核验成年",
        _ => return None,
    })
}

/// A value with its unit in Chinese: `12.5 min` → `12.5 分钟`, `72 h` → `72 小时`; the
/// number itself unchanged.
pub(crate) fn value(en: &str) -> String {
    if let Some(n) = en.strip_suffix(" min") {
        format!("{n} 分钟")
    } else if let Some(n) = en.strip_suffix(" h") {
        format!("{n} 小时")
    } else {
        en.to_owned()
    }
}

/// A session-duration bucket (`≤ 2 h`, `> 4 h`) in Chinese.
pub(crate) fn bucket(en: &str) -> String {
    value(en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_change_and_numbers_do_not() {
        assert_eq!(value("12.5 min"), "12.5 分钟");
        assert_eq!(value("72 h"), "72 小时");
        assert_eq!(value("1,234"), "1,234");
        assert_eq!(bucket("≤ 5 min"), "≤ 5 分钟");
        assert_eq!(bucket("> 4 h"), "> 4 小时");
    }

    #[test]
    fn dynamic_labels_are_translated() {
        assert_eq!(
            figure_label("Notifications: emergency contact (pending)").as_deref(),
            Some("通知：紧急联系人（待发送）")
        );
        assert_eq!(figure_label("known minor").as_deref(), Some("已知未成年人"));
        assert_eq!(figure_label("something new"), None);
    }
}
