-- docker-compose: the Airflow metadata database beside the warehouse.
create database promo_airflow;
