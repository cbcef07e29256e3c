{{ rejected_rows('inventory', 'cycle_counts', 'stg_inventory__cycle_counts__validated') }}
