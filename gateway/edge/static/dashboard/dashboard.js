// The citizen requests' dashboard: one GraphQL request for the figures (the same public
// queries anyone may send), one for the regions' boundaries, everything drawn as SVG here.
// Data is only ever put in the page as text or attributes, never parsed as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹";
  const MONTHS = [
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
    "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند",
  ];
  const STATUSES = {
    SUBMITTED: "ثبت شده",
    ASSIGNED: "ارجاع به واحد",
    IN_PROGRESS: "در دست اقدام",
    WAITING_FOR_CITIZEN: "در انتظار شهروند",
    RESOLVED: "رسیدگی شده",
    REJECTED: "رد شده",
    REFERRED: "ارجاع به دستگاه دیگر",
    REOPENED: "بازگشایی شده",
    CLOSED: "مختومه",
  };
  const DEPARTMENTS = {
    urban_services: "خدمات شهری",
    green_space: "فضای سبز",
    civil_works: "عمران",
    transport: "حمل‌ونقل و ترافیک",
    culture_social: "فرهنگی و اجتماعی",
    public_relations: "روابط عمومی",
    contact137: "مرکز ۱۳۷",
    planning: "شهرسازی",
    revenue: "درآمد",
    inspection: "بازرسی",
  };

  const QUERY = `query Dashboard($since: DateTime, $until: DateTime) {
    total: requestCounts(groupBy: [], since: $since, until: $until) { total open resolved overdue }
    months: requestCounts(groupBy: [MONTH], since: $since, until: $until) { month total }
    statuses: requestCounts(groupBy: [STATUS], since: $since, until: $until) { status total }
    regions: requestCounts(groupBy: [REGION], since: $since, until: $until) { region total }
    services: serviceTransparency(since: $since, until: $until) {
      serviceCode nameFa requests resolved medianDaysToResolution shareOnTime
    }
    ranking: departmentRanking(since: $since, until: $until) { rank unit score requests }
    hotspots: requestHotspots(since: $since, until: $until, first: 100) {
      south west north east count topServiceCode
    }
    problems: frequentProblems(since: $since, until: $until, perRegion: 3) {
      region problems { serviceCode requests }
    }
  }`;

  function fa(value) {
    return String(value).replace(/[0-9]/g, (d) => FA_DIGITS[Number(d)]).replace(".", "٫");
  }

  function monthName(month) {
    const [year, number] = month.split("-");
    return `${MONTHS[Number(number) - 1]} ${fa(year)}`;
  }

  function element(name, attributes, text) {
    const made = name.startsWith("svg:")
      ? document.createElementNS(SVG, name.slice(4))
      : document.createElement(name);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value !== null && value !== undefined) made.setAttribute(key, String(value));
    }
    if (text !== undefined) made.textContent = text;
    return made;
  }

  // Horizontal bars, labels on the right (the page reads right to left), bars growing left.
  function barChart(container, rows, options) {
    const width = 640;
    const labelWidth = options.labelWidth || 170;
    const rowHeight = 24;
    const height = Math.max(rows.length, 1) * rowHeight + 8;
    const max = Math.max(1, ...rows.map((row) => row.value));
    const svg = element("svg:svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": options.title,
    });
    rows.forEach((row, index) => {
      const y = 4 + index * rowHeight;
      const span = ((width - labelWidth - 60) * row.value) / max;
      const group = element("svg:g", { class: "bar-row", ...row.data });
      group.append(
        // direction rtl: "start" is the right edge, and mixed text reads right to left.
        element("svg:text", {
          x: width - 4, y: y + 15, class: "label", direction: "rtl", "text-anchor": "start",
        }, row.label),
        element("svg:rect", {
          x: width - labelWidth - span, y: y + 3, width: Math.max(span, 0.5), height: 16,
          class: `bar ${row.cls || ""}`,
        }),
        element("svg:text", {
          x: width - labelWidth - span - 4, y: y + 15, class: "value", direction: "rtl",
          "text-anchor": "start",
        }, row.valueLabel),
      );
      group.append(element("svg:title", {}, `${row.label}: ${row.valueLabel}`));
      svg.append(group);
    });
    container.replaceChildren(svg);
  }

  function tiles(total) {
    const figures = [
      ["total", "کل درخواست‌ها", total.total],
      ["open", "باز", total.open],
      ["resolved", "رسیدگی شده", total.resolved],
      ["overdue", "گذشته از مهلت", total.overdue],
    ];
    document.getElementById("totals").replaceChildren(
      ...figures.map(([key, label, value]) => {
        const tile = element("div", { class: "tile", [`data-${key}`]: value });
        tile.append(element("b", {}, fa(value)), element("span", {}, label));
        return tile;
      }),
    );
  }

  function drawMap(container, regions, hotspots) {
    const points = regions.flatMap((region) => region.boundary || []);
    for (const spot of hotspots) points.push([spot.south, spot.west], [spot.north, spot.east]);
    if (!points.length) {
      container.replaceChildren(element("p", { class: "muted" }, "مرزی برای مناطق ثبت نشده است"));
      return;
    }
    const lats = points.map((p) => p[0]);
    const lons = points.map((p) => p[1]);
    const [south, north] = [Math.min(...lats), Math.max(...lats)];
    const [west, east] = [Math.min(...lons), Math.max(...lons)];
    const shrink = Math.cos((((south + north) / 2) * Math.PI) / 180);
    const width = 600;
    const scale = width / Math.max((east - west) * shrink, 1e-9);
    const height = Math.max((north - south) * scale, 50);
    const x = (lon) => (lon - west) * shrink * scale;
    const y = (lat) => (north - lat) * scale;
    const svg = element("svg:svg", {
      viewBox: `-10 -10 ${width + 20} ${height + 20}`,
      role: "img",
      "aria-label": "نقشهٔ نقاط پرتکرار",
      class: "map",
    });
    for (const region of regions) {
      const ring = region.boundary || [];
      if (!ring.length) continue;
      const shape = element("svg:polygon", {
        class: "region",
        "data-region": region.region,
        points: ring.map((p) => `${x(p[1]).toFixed(1)},${y(p[0]).toFixed(1)}`).join(" "),
      });
      shape.append(element("svg:title", {}, region.nameFa));
      const cx = ring.reduce((sum, p) => sum + x(p[1]), 0) / ring.length;
      const cy = ring.reduce((sum, p) => sum + y(p[0]), 0) / ring.length;
      svg.append(
        shape,
        element("svg:text", { x: cx, y: cy, class: "region-name", "text-anchor": "middle" },
          region.nameFa),
      );
    }
    const most = Math.max(1, ...hotspots.map((spot) => spot.count));
    for (const spot of hotspots) {
      const cell = element("svg:rect", {
        class: "hotspot",
        x: x(spot.west).toFixed(1),
        y: y(spot.north).toFixed(1),
        width: Math.max(x(spot.east) - x(spot.west), 2).toFixed(1),
        height: Math.max(y(spot.south) - y(spot.north), 2).toFixed(1),
        "fill-opacity": (0.3 + (0.7 * spot.count) / most).toFixed(2),
        "data-count": spot.count,
        "data-service": spot.topServiceCode,
      });
      cell.append(element("svg:title", {}, `${fa(spot.count)} گزارش، بیشتر: ${spot.topServiceCode}`));
      svg.append(cell);
    }
    container.replaceChildren(svg);
  }

  function render(data, regions) {
    const names = Object.fromEntries(regions.map((r) => [String(r.region), r.nameFa]));
    const services = Object.fromEntries(data.services.map((s) => [s.serviceCode, s.nameFa]));
    tiles(data.total[0] || { total: 0, open: 0, resolved: 0, overdue: 0 });
    barChart(document.getElementById("months"), data.months.map((g) => ({
      label: monthName(g.month), value: g.total, valueLabel: fa(g.total),
      data: { "data-month": g.month, "data-count": g.total },
    })), { title: "حجم درخواست‌ها به تفکیک ماه" });
    barChart(document.getElementById("statuses"), data.statuses.map((g) => ({
      label: STATUSES[g.status] || g.status, value: g.total, valueLabel: fa(g.total),
      data: { "data-status": g.status, "data-count": g.total },
    })), { title: "وضعیت درخواست‌ها" });
    barChart(document.getElementById("regions"), data.regions.map((g) => ({
      label: g.region === null ? "بدون منطقه" : names[String(g.region)] || `منطقهٔ ${fa(g.region)}`,
      value: g.total, valueLabel: fa(g.total),
      data: { "data-region": g.region === null ? "none" : g.region, "data-count": g.total },
    })), { title: "درخواست‌ها به تفکیک منطقه" });
    barChart(document.getElementById("ranking"), data.ranking.map((u) => ({
      label: `${fa(u.rank)}. ${DEPARTMENTS[u.unit] || u.unit}`, value: u.score,
      valueLabel: fa(u.score.toFixed(1)), cls: u.rank === 1 ? "ok" : "",
      data: { "data-unit": u.unit, "data-rank": u.rank, "data-score": u.score },
    })), { title: "رتبه‌بندی واحدها", labelWidth: 200 });
    const timed = data.services.filter((s) => s.medianDaysToResolution !== null)
      .sort((a, b) => b.requests - a.requests).slice(0, 12);
    barChart(document.getElementById("times"), timed.map((s) => ({
      label: s.nameFa, value: s.medianDaysToResolution,
      valueLabel: `${fa(s.medianDaysToResolution)} روز`,
      data: { "data-service": s.serviceCode, "data-median": s.medianDaysToResolution },
    })), { title: "میانهٔ روز تا رسیدگی", labelWidth: 220 });
    const body = document.querySelector("#services tbody");
    body.replaceChildren(...data.services.map((s) => {
      const row = element("tr", {
        "data-service": s.serviceCode, "data-requests": s.requests, "data-resolved": s.resolved,
        "data-median": s.medianDaysToResolution ?? "", "data-on-time": s.shareOnTime ?? "",
      });
      row.append(
        element("td", {}, s.nameFa),
        element("td", {}, fa(s.requests)),
        element("td", {}, fa(s.resolved)),
        element("td", {}, s.medianDaysToResolution === null ? "—" : fa(s.medianDaysToResolution)),
        element("td", {}, s.shareOnTime === null ? "—" : `${fa(Math.round(s.shareOnTime * 100))}٪`),
      );
      return row;
    }));
    document.getElementById("problems").replaceChildren(...data.problems.map((entry) => {
      const block = element("div", { class: "region-problems", "data-region": entry.region ?? "none" });
      block.append(element("h3", {},
        entry.region === null ? "بدون منطقه" : names[String(entry.region)] || `منطقهٔ ${fa(entry.region)}`));
      const list = element("ol");
      for (const problem of entry.problems) {
        list.append(element("li", { "data-service": problem.serviceCode, "data-count": problem.requests },
          `${services[problem.serviceCode] || problem.serviceCode}: ${fa(problem.requests)}`));
      }
      block.append(list);
      return block;
    }));
    drawMap(document.getElementById("map"), regions, data.hotspots);
  }

  async function load() {
    const params = new URLSearchParams(window.location.search);
    const variables = { since: params.get("since"), until: params.get("until") };
    if (variables.since || variables.until) {
      document.getElementById("range").textContent =
        `از ${fa(variables.since || "آغاز")} تا ${fa(variables.until || "اکنون")}`;
    }
    const [figures, outlines] = await Promise.all([
      fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ query: QUERY, variables }),
      }).then((response) => response.json()),
      fetch("/dashboard/regions.json").then((response) => response.json()),
    ]);
    if (figures.errors) throw new Error(figures.errors[0].message);
    render(figures.data, outlines.regions);
  }

  function start() {
    load().then(
      () => { document.body.dataset.state = "ready"; },
      (error) => {
        const shown = document.getElementById("error");
        shown.textContent = `بارگیری ناموفق بود: ${error.message}`;
        shown.hidden = false;
        document.body.dataset.state = "error";
      },
    );
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
