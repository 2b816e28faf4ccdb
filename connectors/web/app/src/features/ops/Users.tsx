// #/users (owner): every user with identities across channels, role, skill permissions,
// budget use against the limits and model use in the last 30 days.
import { t, useLocale } from "../../i18n";
import { ops, type UserRow } from "./api";
import { ErrorNote, Loading, named } from "./common";
import { num, usd, when } from "./format";
import { useLoad } from "./useLoad";
import "./ops.css";

/** "270 of 1,000" or "270 (no limit)" — never "270 of unlimited". */
export function budgetText(used: number, limit: number | null): string {
  return limit === null
    ? t("ops.budget.unlimited", { count: used, n: num(used) })
    : t("ops.budget.of", { count: used, n: num(used), limit: num(limit) });
}

export function UsersView() {
  useLocale();
  const users = useLoad(ops.users);
  const list = users.data?.users ?? [];
  return (
    <div className="ops-view">
      <div className="ops-head">
        <h2>{t("ops.users.title")}</h2>
        {users.data && <span className="ops-muted">{t("ops.users.count", { count: list.length, n: num(list.length) })}</span>}
      </div>
      <ErrorNote error={users.error} />
      <Loading loading={users.loading && !users.data} />
      {users.data && (
        <div className="ops-tablewrap" tabIndex={0} role="region" aria-label={t("ops.users.title")}>
          <table className="ops-table">
            <thead>
              <tr>
                <th scope="col">{t("ops.users.name")}</th>
                <th scope="col">{t("ops.users.role")}</th>
                <th scope="col">{t("ops.users.identities")}</th>
                <th scope="col">{t("ops.users.permissions")}</th>
                <th scope="col">{t("ops.users.today")}</th>
                <th scope="col">{t("ops.users.month")}</th>
                <th scope="col">{t("ops.users.usage", { count: users.data.usage_days, n: users.data.usage_days })}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((u) => (
                <UserLine key={u.id} u={u} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function UserLine({ u }: { u: UserRow }) {
  return (
    <tr>
      <th scope="row">
        {u.name}
        <div className="ops-muted">
          {t("ops.users.since", { at: when(u.created_at) })} · {t("ops.sessions.count", { count: u.sessions, n: num(u.sessions) })}
        </div>
      </th>
      <td>{named("ops.role", u.role)}</td>
      <td>
        <ul className="ops-plain">
          {u.identities.map((i) => (
            <li key={`${i.channel}:${i.external_id}`}>
              <span className="ops-badge">{i.channel}</span> {i.external_id}
            </li>
          ))}
        </ul>
      </td>
      <td>{u.permissions.length ? u.permissions.map((p) => named("ops.perm", p)).join(", ") : t("ops.none")}</td>
      <td>{budgetText(u.budget.today, u.budget.daily_limit)}</td>
      <td>{budgetText(u.budget.month, u.budget.monthly_limit)}</td>
      <td>
        {t("ops.calls", { count: u.usage.calls, n: num(u.usage.calls) })}
        <div className="ops-muted">
          {t("ops.tokens", {
            count: u.usage.tokens_in + u.usage.tokens_out,
            n: num(u.usage.tokens_in + u.usage.tokens_out),
          })}{" "}
          · {usd(u.usage.cost_usd)}
        </div>
      </td>
    </tr>
  );
}
