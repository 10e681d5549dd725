"""sopflow-forms: what customers do outside the chat, recorded on the customer.

Two plugins in one distribution, each enabled per tenant on its own:

- ``orders`` (``sopflow_forms.orders_plugin``): 有赞 pushes and a generic signed
  shop webhook become ``order.paid`` / ``order.refunded`` / ``order.closed`` and the
  derived ``orders.*`` fields, kept exact in a per-order fact table;
- ``forms`` (``sopflow_forms.forms_plugin``): 简道云, 问卷星, 腾讯问卷 and 金数据 form
  pushes become ``form.submitted`` and the mapped customer fields.
"""
