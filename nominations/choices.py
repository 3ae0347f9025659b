"""The standard lists behind three fields of the forms, so that "汉", "汉族" and "Han" are one answer.

- 民族: GB/T 3304-1991 《中国各民族名称的罗马字母拼写法和代码》, its 56 names in code order
  (01 汉族 … 56 基诺族), then 97 其他 and 98 外国血统中国籍人士.
- 文化程度: GB/T 4658-2006 《学历代码》, its top level in code order, the vocational branch
  (中等专业学校, 职业高中, 技工学校) spelled out as applicants name it and the lowest levels joined.
- 政治面貌: GB/T 4762-1984 《政治面貌代码》 (01 … 13), in the short forms used on Chinese forms.
"""

from __future__ import annotations

ETHNICITIES: tuple[str, ...] = (
    "汉族", "蒙古族", "回族", "藏族", "维吾尔族", "苗族", "彝族", "壮族", "布依族", "朝鲜族",
    "满族", "侗族", "瑶族", "白族", "土家族", "哈尼族", "哈萨克族", "傣族", "黎族", "傈僳族",
    "佤族", "畲族", "高山族", "拉祜族", "水族", "东乡族", "纳西族", "景颇族", "柯尔克孜族", "土族",
    "达斡尔族", "仫佬族", "羌族", "布朗族", "撒拉族", "毛南族", "仡佬族", "锡伯族", "阿昌族", "普米族",
    "塔吉克族", "怒族", "乌孜别克族", "俄罗斯族", "鄂温克族", "德昂族", "保安族", "裕固族", "京族", "塔塔尔族",
    "独龙族", "鄂伦春族", "赫哲族", "门巴族", "珞巴族", "基诺族",
    "其他", "外国血统中国籍人士",
)

EDUCATION_LEVELS: tuple[str, ...] = (
    "研究生", "大学本科", "大学专科", "中等专业学校", "职业高中", "技工学校", "高中", "初中及以下",
)

POLITICAL_STATUSES: tuple[str, ...] = (
    "中共党员", "中共预备党员", "共青团员", "民革会员", "民盟盟员", "民建会员", "民进会员",
    "农工党党员", "致公党党员", "九三学社社员", "台盟盟员", "无党派人士", "群众",
)

#: field → (its list, the standard it follows)
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "ethnicity": (ETHNICITIES, "GB/T 3304"),
    "education": (EDUCATION_LEVELS, "GB/T 4658"),
    "political_status": (POLITICAL_STATUSES, "GB/T 4762"),
}
