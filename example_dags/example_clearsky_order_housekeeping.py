"""Recurring-order housekeeping: before each month's renewal, stop the recurring orders nobody needs any more.

A recurring ClearSKY order renews (and is charged) at 00:00 UTC on the 1st of every month until it is
cancelled before that cut-off. This DAG runs a few days earlier, applies a policy, cancels, and reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_clearsky.operators.cancel import ClearSkyCancelOrderOperator

try:
    from airflow.sdk import CronTriggerTimetable  # Airflow 3.1+
except ImportError:  # Airflow 3.0
    from airflow.timetables.trigger import CronTriggerTimetable

DAG_ID = "example_clearsky_order_housekeeping"
# Where the operations team lists orders to retire, without editing the DAG: a JSON list of order GUIDs.
RETIRE_VARIABLE = "clearsky_orders_to_retire"

DOC_MD = f"""
### Recurring-order housekeeping before the renewal cut-off

Runs at 06:00 UTC on the 25th of every month, days before the cut-off (00:00 UTC on the 1st), so a failed
run can be retried and looked at in time. A recurring order cancelled after the cut-off is renewed and
charged for the new month anyway; the cancel then stops only the renewal after it.

1. **select_orders**: lists the account's recurring orders that still renew, and marks for cancellation
   those the policy no longer needs:
   * listed in the Airflow Variable `{RETIRE_VARIABLE}` (JSON list of order GUIDs) or in the
     `retire_order_guids` param;
   * older than `max_age_months` months (by their `From` month; 0 turns this rule off);
   * never those in `keep_order_guids`.
   With `dry_run` (the default when triggered by hand is the param's value) nothing is cancelled.
2. **cancel_order**: one mapped task per order (the map index shows the GUID). For an accepted recurring
   order the cancel stops the next renewal; paid coverage stays until the end of the month. An order still
   in Review is withdrawn completely. The extra link *ClearSKY order* opens each order.
3. **report**: what was cancelled and what was kept, with the reasons (also in the task's XCom), and it runs
   when there was nothing to cancel too.

**Connection:** `clearsky_default` (type `clearsky`): API key in *Password*, base URL in *Host* (empty for
`https://api.clearsky.vision`).
"""


@task
def select_orders(params: Any = None, dag_run: Any = None, ti: Any = None) -> list[str]:
    """The GUIDs of the recurring orders to cancel this month (empty on a dry run)."""
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

    retire = {guid.lower() for guid in Variable.get(RETIRE_VARIABLE, default=[], deserialize_json=True)}
    retire |= {guid.lower() for guid in params["retire_order_guids"]}
    keep = {guid.lower() for guid in params["keep_order_guids"]}
    max_age = int(params["max_age_months"])
    # The month this run decides for: the schedule's date (the 25th), or run_after for a run without one.
    this_month = pendulum.instance(dag_run.logical_date or dag_run.run_after).in_timezone("UTC").date().replace(day=1)

    with ClearSkyHook("clearsky_default") as hook:
        renewing = [o for o in hook.list_orders(recurring_only=True) if o.is_recurring and not o.is_failed]
    decisions = []
    for order in renewing:
        guid = order.guid.lower()
        age = (this_month.year - order.date_from.year) * 12 + this_month.month - order.date_from.month
        reasons = []
        if guid in retire:
            reasons.append("listed for retirement")
        if max_age and age >= max_age:
            reasons.append(f"{age} months old (limit {max_age})")
        cancel = bool(reasons) and guid not in keep
        if reasons and guid in keep:
            reasons.append("but kept by keep_order_guids")
        decisions.append({"order_guid": order.guid, "from": str(order.date_from), "cancel": cancel, "why": reasons})
        print(f"{order.guid} (since {order.date_from}, {order.status}): {'CANCEL' if cancel else 'keep'} {reasons}")
    ti.xcom_push(key="decisions", value=decisions)
    chosen = [d["order_guid"] for d in decisions if d["cancel"]]
    if params["dry_run"]:
        print(f"Dry run: would cancel {len(chosen)} order(s): {chosen}")
        return []
    return chosen


@task(trigger_rule="none_failed", multiple_outputs=False)
def report(results: Any = None, ti: Any = None, params: Any = None) -> dict[str, Any]:
    """What was cancelled, what renews, and why; fails nothing (the cancels themselves fail loudly)."""
    decisions = ti.xcom_pull(task_ids="select_orders", key="decisions") or []
    cancelled = [dict(result) for result in (results or [])]
    kept = [d for d in decisions if not d["cancel"] or params["dry_run"]]
    print(f"Cancelled {len(cancelled)} recurring order(s); {len(kept)} keep renewing.")
    for result in cancelled:
        print(f"  {result['order_guid']}: {result['outcome']} - {result['message']}")
    for decision in kept:
        print(f"  {decision['order_guid']}: keeps renewing {decision['why'] or ''}")
    return {"cancelled": cancelled, "kept": kept, "dry_run": bool(params["dry_run"])}


with DAG(
    dag_id=DAG_ID,
    description="Cancel recurring ClearSKY orders the policy no longer needs, before the monthly renewal",
    doc_md=DOC_MD,
    schedule=CronTriggerTimetable("0 6 25 * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # it cancels: one decision at a time
    tags=["clearsky", "example", "housekeeping"],
    params={
        "max_age_months": Param(12, type="integer", minimum=0, description="Cancel orders this old (0: never)"),
        "retire_order_guids": Param([], type="array", description="Order GUIDs to cancel this month"),
        "keep_order_guids": Param([], type="array", description="Order GUIDs never to cancel"),
        "dry_run": Param(False, type="boolean", description="Only report what would be cancelled"),
    },
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
) as dag:
    chosen = select_orders()
    cancelled = ClearSkyCancelOrderOperator.partial(
        task_id="cancel_order",
        map_index_template="{{ task.order_guid }}",
    ).expand(order_guid=chosen)
    report(cancelled.output)


if __name__ == "__main__":
    dag.test()
